// The comments of nftables rules by (family, table, chain, handle), asked of the kernel (NFT_MSG_GETRULE) and
// cached: the tracer names the rules a trace went through with it, and the fexit attribution, whose BPF
// program reads only the first bytes of a rule's native comment (and none of iptables-nft's `-m comment`
// matches), reads a rule's every comment with it.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/error.hpp"
#include "netfilter/rule_tracer.hpp"

struct mnl_socket;

namespace npt::netfilter {

class RuleCommentLookup {
  public:
    // A NETLINK_NETFILTER socket of its own. Errors are one line (no CAP_NET_ADMIN, ...).
    static Result<std::unique_ptr<RuleCommentLookup>> open();
    ~RuleCommentLookup();
    RuleCommentLookup(const RuleCommentLookup&) = delete;
    RuleCommentLookup& operator=(const RuleCommentLookup&) = delete;

    // Empty when the rule has no comment or is gone (its chain resynced: kube-router rewrites its filter table
    // at every sync, and handles are never reused). `family` is the table's NFPROTO_* value.
    RuleComments get(uint32_t family, const std::string& table, const std::string& chain, uint64_t handle);

    uint64_t lookups() const { return lookups_; }    // requests sent to the kernel
    uint64_t failures() const { return failures_; }  // of which unanswered

  private:
    RuleCommentLookup() = default;
    RuleComments ask(uint32_t family, const std::string& table, const std::string& chain, uint64_t handle);

    struct Cached {
        RuleComments comments;
        uint64_t at_ns = 0;
    };
    mnl_socket* socket_ = nullptr;
    uint32_t seq_ = 0;
    std::unordered_map<std::string, Cached> cache_;
    std::deque<std::string> order_;
    uint64_t lookups_ = 0;
    uint64_t failures_ = 0;
};

}  // namespace npt::netfilter
