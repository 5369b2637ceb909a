#include "netfilter/rule_comments.hpp"

#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/common.h>
#include <libnftnl/rule.h>
#include <linux/netfilter/nf_tables.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>
#include <vector>

#include "netfilter/netlink_request.hpp"
#include "netfilter/nft_rule_comment.hpp"
#include "netfilter/packet_tuple.hpp"

namespace npt::netfilter {

namespace {

constexpr size_t kCacheSize = 4096;
// Handles are not reused within a table's life, but a table deleted and created again starts over: cached
// comments expire.
constexpr uint64_t kMaxAge = 30'000'000'000ull;

}  // namespace

Result<std::unique_ptr<RuleCommentLookup>> RuleCommentLookup::open() {
    std::unique_ptr<RuleCommentLookup> out(new RuleCommentLookup());
    out->socket_ = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
    if (out->socket_ == nullptr || mnl_socket_bind(out->socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
        const int err = errno;
        if (err == EPERM || err == EACCES) return Error{"reading rule comments needs CAP_NET_ADMIN (run as root)"};
        return Error{std::string("cannot open a netfilter netlink socket: ") + std::strerror(err)};
    }
    out->seq_ = static_cast<uint32_t>(time(nullptr));
    return out;
}

RuleCommentLookup::~RuleCommentLookup() {
    if (socket_ != nullptr) mnl_socket_close(socket_);
}

RuleComments RuleCommentLookup::get(uint32_t family, const std::string& table, const std::string& chain,
                                    uint64_t handle) {
    std::string key = std::to_string(family) + '\0' + table + '\0' + chain + '\0' + std::to_string(handle);
    const uint64_t now = monotonic_ns();
    if (auto it = cache_.find(key); it != cache_.end() && now - it->second.at_ns <= kMaxAge) return it->second.comments;
    auto comments = ask(family, table, chain, handle);
    if (!cache_.contains(key)) order_.push_back(key);
    cache_[key] = Cached{comments, now};
    while (cache_.size() > kCacheSize && !order_.empty()) {
        cache_.erase(order_.front());
        order_.pop_front();
    }
    return comments;
}

RuleComments RuleCommentLookup::ask(uint32_t family, const std::string& table, const std::string& chain,
                                    uint64_t handle) {
    ++lookups_;
    nftnl_rule* request = nftnl_rule_alloc();
    if (request == nullptr) {
        ++failures_;
        return {};
    }
    nftnl_rule_set_u32(request, NFTNL_RULE_FAMILY, family);
    nftnl_rule_set_str(request, NFTNL_RULE_TABLE, table.c_str());
    nftnl_rule_set_str(request, NFTNL_RULE_CHAIN, chain.c_str());
    nftnl_rule_set_u64(request, NFTNL_RULE_HANDLE, handle);
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE + table.size() + chain.size());
    nlmsghdr* nlh =
        nftnl_rule_nlmsg_build_hdr(buf.data(), NFT_MSG_GETRULE, static_cast<uint16_t>(family), NLM_F_ACK, ++seq_);
    nftnl_rule_nlmsg_build_payload(nlh, request);
    nftnl_rule_free(request);

    bool found = false;
    RuleComments comments;
    const int err = netlink_request(socket_, nlh, [&](const nlmsghdr* reply) {
        if (nft_rule_message_comments(reply, &comments)) found = true;
    });
    if (err != 0 || !found) ++failures_;  // e.g. ENOENT: the rule is gone already
    return comments;
}

}  // namespace npt::netfilter
