// Looks inside a network namespace known only by its inode number (as drop events report it).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>

namespace npt::capture {

class NetnsInspector {
  public:
    // Whether the netns has iptables-legacy tables (ip_tables_names or ip6_tables_names not empty). nullopt
    // when the netns cannot be found (no process in it and no /run/netns entry) or entered (needs
    // CAP_SYS_ADMIN). Answers are cached for a few seconds: tables appear on first use.
    std::optional<bool> has_iptables_legacy_tables(uint32_t netns_inum);

    // Whether the netns has nftables tables (iptables-nft's included): one NFT_MSG_GETTABLE dump over
    // nfnetlink. nullopt when the netns cannot be entered or nf_tables is not loaded. Cached like the above.
    std::optional<bool> has_nftables_tables(uint32_t netns_inum);

    // Name of interface `ifindex` in that netns ("" when unknown). Cached for a few seconds.
    std::string interface_name(uint32_t netns_inum, uint32_t ifindex);

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
