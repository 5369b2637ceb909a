// --flows-journal PATH: the agent's connections on disk, so that a restart does not forget the last day. Appends
// the contract's JSON lines of the entries that changed; the latest line of a connection wins when read back.
// Bounded: when an append would take PATH past half of max_bytes, PATH becomes PATH.1 (replacing the older one) and
// starts again with a snapshot of the table's most recent connections (a quarter of max_bytes at most), so the two
// files never hold more than max_bytes.
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "flows/connection.hpp"

namespace npt {

class FlowsJournal {
  public:
    // Opens PATH for appending (creating it and its directory's file, not the directory). Error: one line.
    static Result<FlowsJournal> open(std::string path, uint64_t max_bytes);

    // The connections recorded in PATH.1 then PATH, the latest line of each; unreadable lines are skipped and
    // counted (a line cut short by a crash). Missing files read as empty.
    struct Loaded {
        std::vector<Connection> connections;  // least recently seen first
        size_t bad_lines = 0;
    };
    Loaded load() const;

    // Appends the lines of `changed`, or rotates and writes `snapshot()`'s (the whole table, least recently seen
    // first) instead. Error: the write failed (disk full): one line.
    Result<bool> append(const std::vector<Connection>& changed,
                        const std::function<std::vector<Connection>()>& snapshot);

    const std::string& path() const { return path_; }
    uint64_t rotations() const { return rotations_; }

  private:
    FlowsJournal(std::string path, uint64_t max_bytes) : path_(std::move(path)), max_bytes_(max_bytes) {}
    Result<bool> write(const std::string& text);

    std::string path_;
    uint64_t max_bytes_ = 0;
    uint64_t size_ = 0;
    uint64_t rotations_ = 0;
};

}  // namespace npt
