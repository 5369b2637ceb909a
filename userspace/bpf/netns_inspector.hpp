// Looks inside a network namespace known only by its inode number (as drop events report it).
#pragma once

#include <sched.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>

namespace npt::capture {

// Runs fn on a thread of its own that entered the network namespace open at fd (setns moves the calling thread
// only, so the caller's stays where it is); false when the namespace could not be entered. fd stays open.
template <typename Fn>
bool run_in_netns(int fd, Fn&& fn) {
    bool entered = false;
    std::thread worker([&] {
        if (::setns(fd, CLONE_NEWNET) == 0) {
            entered = true;
            fn();
        }
    });
    worker.join();
    return entered;
}

// What decoding a drop asks of the network namespace it happened in. The capture answers from the running
// system (NetnsInspector); tests that replay recorded events answer what was recorded with them.
class NetnsQueries {
  public:
    virtual ~NetnsQueries() = default;
    // Whether the netns has iptables-legacy tables (ip_tables_names or ip6_tables_names not empty); nullopt
    // when it cannot be told.
    virtual std::optional<bool> has_iptables_legacy_tables(uint32_t netns_inum) = 0;
    // Whether the netns has nftables tables (iptables-nft's included); nullopt when it cannot be told.
    virtual std::optional<bool> has_nftables_tables(uint32_t netns_inum) = 0;
    // Name of interface `ifindex` in that netns ("" when unknown).
    virtual std::string interface_name(uint32_t netns_inum, uint32_t ifindex) = 0;
};

class NetnsInspector final : public NetnsQueries {
  public:
    // ip_tables_names / ip6_tables_names read inside the netns. nullopt when the netns cannot be found (no
    // process in it and no /run/netns entry) or entered (needs CAP_SYS_ADMIN). Answers are cached for a few
    // seconds: tables appear on first use.
    std::optional<bool> has_iptables_legacy_tables(uint32_t netns_inum) override;

    // One NFT_MSG_GETTABLE dump over nfnetlink. nullopt when the netns cannot be entered or nf_tables is not
    // loaded. Cached like the above.
    std::optional<bool> has_nftables_tables(uint32_t netns_inum) override;

    // Cached for a few seconds.
    std::string interface_name(uint32_t netns_inum, uint32_t ifindex) override;

  private:
    template <typename T>
    struct Cached {
        T value;
        std::chrono::steady_clock::time_point at;
    };
    std::unordered_map<uint32_t, Cached<std::optional<bool>>> legacy_;
    std::unordered_map<uint32_t, Cached<std::optional<bool>>> nftables_;
    std::unordered_map<uint64_t, Cached<std::string>> ifnames_;
};

}  // namespace npt::capture
