#include "netfilter/trace_assembler.hpp"

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include <algorithm>

namespace npt::netfilter {

namespace {

constexpr size_t kMaxReturned = 16;

// nftables' own verdicts (NFT_JUMP, ...) are negative; netfilter's (NF_DROP, ...) keep the code in the low
// byte and may carry a queue number or errno above it.
bool is_nft_verdict(uint32_t verdict, int code) {
    return static_cast<int32_t>(verdict) == code;
}

bool is_drop(uint32_t verdict) {
    return static_cast<int32_t>(verdict) >= 0 && (verdict & NF_VERDICT_MASK) == NF_DROP;
}

}  // namespace

std::string nft_family_name(uint32_t nfproto) {
    switch (nfproto) {
        case NFPROTO_INET:
            return "inet";
        case NFPROTO_IPV4:
            return "ip";
        case NFPROTO_IPV6:
            return "ip6";
        case NFPROTO_BRIDGE:
            return "bridge";
        case NFPROTO_NETDEV:
            return "netdev";
        case NFPROTO_ARP:
            return "arp";
        default:
            return "family" + std::to_string(nfproto);
    }
}

TraceAssembler::TraceAssembler(CommentLookup lookup, size_t max_partial)
    : lookup_(std::move(lookup)), max_partial_(max_partial == 0 ? 1 : max_partial) {}

std::optional<std::pair<PacketTuple, TracedDrop>> TraceAssembler::add(const TraceEvent& event) {
    if (event.has_packet) {
        // The first message of a base chain run: the packet starts over in this chain.
        Partial fresh;
        fresh.generation = next_generation_++;
        fresh.tuple = event.tuple;
        fresh.family = event.family;
        fresh.table = event.table;
        fresh.stack.push_back(Frame{event.chain, {}, std::nullopt, false});
        fresh.iif = event.iif;
        fresh.oif = event.oif;
        order_.emplace_back(event.id, fresh.generation);
        partial_[event.id] = std::move(fresh);

        while (partial_.size() > max_partial_ && !order_.empty()) {
            const auto [id, generation] = order_.front();
            order_.pop_front();
            auto it = partial_.find(id);
            if (it != partial_.end() && it->second.generation == generation) partial_.erase(it);
        }
        // Entries of finished packets stay in order_ until they reach its front; drop them in bulk.
        if (order_.size() > 2 * max_partial_ + 64) {
            std::erase_if(order_, [this](const auto& entry) {
                auto it = partial_.find(entry.first);
                return it == partial_.end() || it->second.generation != entry.second;
            });
        }
    }

    auto it = partial_.find(event.id);
    if (it == partial_.end()) return std::nullopt;  // its first message was lost or evicted
    Partial& p = it->second;
    if (p.table != event.table || p.family != event.family) return std::nullopt;  // lost the header message
    sync(p, event.chain);

    switch (event.type) {
        case NFT_TRACETYPE_RULE: {
            if (!event.verdict) return std::nullopt;
            const uint32_t v = *event.verdict;
            if (is_nft_verdict(v, NFT_JUMP) || is_nft_verdict(v, NFT_GOTO)) {
                if (!event.jump_target.empty()) {
                    p.stack.push_back(
                        Frame{event.jump_target, event.chain, event.rule_handle, is_nft_verdict(v, NFT_GOTO)});
                }
                return std::nullopt;
            }
            if (is_nft_verdict(v, NFT_RETURN)) {
                pop_return(p);
                return std::nullopt;
            }
            if (is_nft_verdict(v, NFT_CONTINUE) || is_nft_verdict(v, NFT_BREAK)) return std::nullopt;
            if (is_drop(v) && p.tuple) {
                auto result = std::make_pair(*p.tuple, finish(p, event, false));
                forget(event.id);
                return result;
            }
            forget(event.id);  // accept, queue, stolen, ...: this base chain is done with the packet
            return std::nullopt;
        }
        case NFT_TRACETYPE_RETURN:
            pop_return(p);
            return std::nullopt;
        case NFT_TRACETYPE_POLICY: {
            if (event.verdict && is_drop(*event.verdict) && p.tuple) {
                auto result = std::make_pair(*p.tuple, finish(p, event, true));
                forget(event.id);
                return result;
            }
            forget(event.id);
            return std::nullopt;
        }
        default:
            return std::nullopt;
    }
}

// Brings the stack in line with the chain the message comes from: a chain further down means the chains
// above it returned (the kernel sends nothing for an implicit return); an unknown chain means the jump
// message was lost, and the chain is entered without a jump rule.
void TraceAssembler::sync(Partial& p, const std::string& chain) {
    if (p.stack.back().chain == chain) return;
    auto found = std::find_if(p.stack.begin(), p.stack.end(), [&](const Frame& f) { return f.chain == chain; });
    if (found != p.stack.end()) {
        const size_t keep = static_cast<size_t>(found - p.stack.begin()) + 1;
        while (p.stack.size() > keep) pop_one(p);
        return;
    }
    p.stack.push_back(Frame{chain, p.stack.back().chain, std::nullopt, false});
}

// A chain returned: control goes back to the chain that jumped to it. A chain entered by goto replaced its
// caller, so the return continues in the caller's caller.
void TraceAssembler::pop_return(Partial& p) {
    while (p.stack.size() > 1) {
        const bool via_goto = p.stack.back().via_goto;
        pop_one(p);
        if (!via_goto) break;
    }
}

void TraceAssembler::pop_one(Partial& p) {
    Frame frame = std::move(p.stack.back());
    p.stack.pop_back();
    if (p.returned.size() == kMaxReturned) p.returned.erase(p.returned.begin());
    p.returned.push_back(std::move(frame));
}

RuleComments TraceAssembler::jump_comments(const Partial& p, const Frame& f) {
    if (!f.jump_handle || !lookup_) return {};
    return lookup_(p.family, p.table, f.jump_chain, *f.jump_handle);
}

TracedDrop TraceAssembler::finish(const Partial& p, const TraceEvent& event, bool chain_policy) {
    TracedDrop drop;
    drop.family = nft_family_name(p.family);
    drop.table = p.table;
    drop.chain = event.chain;
    drop.chain_policy = chain_policy;
    if (!chain_policy && event.rule_handle) {
        drop.handle = event.rule_handle;
        if (lookup_) drop.comments = lookup_(p.family, p.table, event.chain, *event.rule_handle);
    }
    for (size_t i = 0; i < p.stack.size(); ++i) {
        drop.path.push_back(p.stack[i].chain);
        if (i > 0) drop.jump_comments.push_back(jump_comments(p, p.stack[i]));
    }
    for (const auto& f : p.returned) drop.returned.push_back(ReturnedChain{f.chain, jump_comments(p, f)});
    drop.iif = p.iif;
    drop.oif = p.oif;
    return drop;
}

}  // namespace npt::netfilter
