// Assembles nftables trace messages (NFT_MSG_TRACE, one per rule a traced packet meets) into the DROP
// verdicts RuleTracer reports. Kept apart from the netlink plumbing so the state machine can be tested with
// synthetic messages.
//
// What the kernel sends, per traced packet and base chain it passes (verified on 6.x):
//   - the first message of each base chain run carries the packet (network header cut at 40 bytes, transport
//     header cut at 16, iif/oif); later messages of that run carry only the trace id;
//   - a RULE message for every rule that matched: verdict continue (counter, log, nftrace set, ...), jump /
//     goto (with the target chain), return, or a terminal verdict (accept, drop, queue, ...);
//   - a POLICY message when a base chain ends without a terminal verdict;
//   - nothing when a jumped-to chain ends without a verdict (the next message simply comes from the caller).
// The trace id stays the same across hooks and tables, so a packet's id is restarted by every message that
// carries headers.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "netfilter/packet_tuple.hpp"
#include "netfilter/rule_tracer.hpp"

struct nlmsghdr;

namespace npt::netfilter {

// "inet", "ip", "ip6", "bridge", "netdev", "arp" for the NFPROTO_* values of nftables tables.
std::string nft_family_name(uint32_t nfproto);

// One parsed trace message.
struct TraceEvent {
    uint32_t id = 0;
    uint32_t type = 0;    // NFT_TRACETYPE_*
    uint32_t family = 0;  // the table's family (NFPROTO_*)
    std::string table;
    std::string chain;
    std::optional<uint64_t> rule_handle;
    std::optional<uint32_t> verdict;   // NF_* or NFT_* verdict code; for POLICY messages the chain's policy
    std::string jump_target;           // for NFT_JUMP / NFT_GOTO
    bool has_packet = false;           // the message carried the packet headers (first of a base chain run)
    std::optional<PacketTuple> tuple;  // parsed from them (null for non-IP packets)
    uint32_t iif = 0;
    uint32_t oif = 0;
};

// Parses one NFT_MSG_TRACE message (libnftnl's nftnl_trace_nlmsg_parse; defined in rule_tracer.cpp). Null when
// it is malformed: checked before libnftnl, which exits the process on a message it does not expect. The
// caller checks the message type; `nlh->nlmsg_len` must lie within the buffer.
std::optional<TraceEvent> parse_trace_message(const nlmsghdr* nlh);

class TraceAssembler {
  public:
    // The comments of a rule, looked up by (table family, table, chain, handle); empty when it has none or
    // the lookup failed.
    using CommentLookup = std::function<RuleComments(uint32_t family, const std::string& table,
                                                     const std::string& chain, uint64_t handle)>;

    explicit TraceAssembler(CommentLookup lookup, size_t max_partial = 4096);

    // Feeds one message; returns the packet's tuple and verdict when the message is its DROP.
    std::optional<std::pair<PacketTuple, TracedDrop>> add(const TraceEvent& event);

    // Packets whose trace is in progress (bounded by max_partial, the oldest forgotten first).
    size_t partial() const { return partial_.size(); }

  private:
    struct Frame {
        std::string chain;
        std::string jump_chain;               // the chain holding the jump/goto rule that entered it
        std::optional<uint64_t> jump_handle;  // that rule (null for the base chain, or a missed message)
        bool via_goto = false;
    };
    struct Partial {
        uint64_t generation = 0;
        std::optional<PacketTuple> tuple;
        uint32_t family = 0;
        std::string table;
        std::vector<Frame> stack;     // base chain first
        std::vector<Frame> returned;  // chains entered and left again, in the order they returned
        uint32_t iif = 0;
        uint32_t oif = 0;
    };

    void sync(Partial& p, const std::string& chain);
    void pop_return(Partial& p);
    void pop_one(Partial& p);
    RuleComments jump_comments(const Partial& p, const Frame& f);
    TracedDrop finish(const Partial& p, const TraceEvent& event, bool chain_policy);
    void forget(uint32_t id) { partial_.erase(id); }

    CommentLookup lookup_;
    size_t max_partial_;
    uint64_t next_generation_ = 1;
    std::unordered_map<uint32_t, Partial> partial_;
    std::deque<std::pair<uint32_t, uint64_t>> order_;  // (id, generation) in creation order, for eviction
};

}  // namespace npt::netfilter
