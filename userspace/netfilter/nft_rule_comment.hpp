// The comment of an nftables rule as the kernel returns it (NFT_MSG_NEWRULE, parsed by libnftnl).
#pragma once

#include <optional>
#include <string>

struct nftnl_rule;
struct nlmsghdr;

namespace npt::netfilter {

// The native comment (rule userdata, `comment "..."`), else an iptables-nft `-m comment --comment` (an xt
// "comment" match expression). Null when the rule has neither.
std::optional<std::string> nft_rule_comment(const nftnl_rule* rule);

// The same for a rule message as the kernel answers NFT_MSG_GETRULE with (NFT_MSG_NEWRULE), read from the
// message's own attributes (not through libnftnl, which exits the process on a malformed message). False when
// the message is not a rule; `*comment` is set only when it is. `nlh->nlmsg_len` must lie within the buffer.
bool nft_rule_message_comment(const nlmsghdr* nlh, std::optional<std::string>* comment);

}  // namespace npt::netfilter
