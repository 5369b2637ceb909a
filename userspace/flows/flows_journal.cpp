#include "flows/flows_journal.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unordered_map>

#include "flows/connection_table.hpp"

namespace npt {

Result<FlowsJournal> FlowsJournal::open(std::string path, uint64_t max_bytes) {
    FlowsJournal j(std::move(path), max_bytes);
    std::ofstream out(j.path_, std::ios::app);
    if (!out)
        return Error{
            fmt::format("--flows-journal {}: cannot open for appending: {} (a writable volume is needed: "
                        "the root filesystem is read-only in the DaemonSet)",
                        j.path_, std::strerror(errno))};
    std::error_code ec;
    j.size_ = std::filesystem::file_size(j.path_, ec);
    return j;
}

FlowsJournal::Loaded FlowsJournal::load() const {
    Loaded out;
    std::unordered_map<ConnectionKey, size_t, ConnectionKeyHash> at;
    for (const std::string& file : {path_ + ".1", path_}) {
        std::ifstream in(file);
        std::string line;
        while (std::getline(in, line)) {
            if (line.empty()) continue;
            auto c = parse_connection(line, file);
            if (!c || !c->last_seen) {
                ++out.bad_lines;
                continue;
            }
            c->line.clear();
            const auto key = ConnectionKey::of(*c);
            if (auto it = at.find(key); it != at.end()) {
                out.connections[it->second] = std::move(*c);
            } else {
                at[key] = out.connections.size();
                out.connections.push_back(std::move(*c));
            }
        }
    }
    std::stable_sort(out.connections.begin(), out.connections.end(),
                     [](const Connection& a, const Connection& b) { return *a.last_seen < *b.last_seen; });
    return out;
}

namespace {

std::string lines_of(const std::vector<Connection>& connections, uint64_t budget) {
    std::string text;
    for (const auto& c : connections) {
        std::string line = connection_json(c);
        line += '\n';
        if (text.size() + line.size() > budget) break;
        text += line;
    }
    return text;
}

}  // namespace

Result<bool> FlowsJournal::write(const std::string& text) {
    std::ofstream out(path_, std::ios::app);
    out << text;
    out.flush();
    if (!out) return Error{fmt::format("--flows-journal {}: write failed: {}", path_, std::strerror(errno))};
    size_ += text.size();
    return true;
}

Result<bool> FlowsJournal::append(const std::vector<Connection>& changed,
                                  const std::function<std::vector<Connection>()>& snapshot) {
    const uint64_t half = max_bytes_ / 2;
    std::string text = lines_of(changed, half);
    if (size_ + text.size() <= half) return write(text);
    // PATH would pass half the budget: it becomes PATH.1, and PATH starts with a snapshot of the table (the most
    // recently seen connections, in a quarter of the budget: what does not fit is the oldest, kept in PATH.1 only).
    std::error_code ec;
    std::filesystem::rename(path_, path_ + ".1", ec);
    if (ec) return Error{fmt::format("--flows-journal {}: cannot rotate: {}", path_, ec.message())};
    size_ = 0;
    ++rotations_;
    auto all = snapshot();
    std::vector<Connection> recent;
    uint64_t bytes = 0;
    for (size_t i = all.size(); i-- > 0;) {
        bytes += connection_json(all[i]).size() + 1;
        if (bytes > max_bytes_ / 4) break;
        recent.push_back(std::move(all[i]));
    }
    std::reverse(recent.begin(), recent.end());
    return write(lines_of(recent, max_bytes_ / 4));
}

}  // namespace npt
