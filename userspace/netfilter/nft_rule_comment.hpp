// The comments of an nftables rule as the kernel returns it (NFT_MSG_NEWRULE, parsed by libnftnl).
#pragma once

#include <string>
#include <vector>

struct nftnl_rule;
struct nlmsghdr;

namespace npt::netfilter {

// Every comment of a rule, in the order the kernel holds them: the native comment (rule userdata,
// `comment "..."`) first, then each iptables-nft `-m comment --comment` (an xt "comment" match expression) in
// match order. A rule may carry several: Calico's Felix writes its rule id and each of its texts as separate
// comment matches. Empty comments are left out; empty when the rule has none.
std::vector<std::string> nft_rule_comments(const nftnl_rule* rule);

// The same for a rule message as the kernel answers NFT_MSG_GETRULE with (NFT_MSG_NEWRULE), read from the
// message's own attributes (not through libnftnl, which exits the process on a malformed message). False when
// the message is not a rule; `*comments` is set only when it is. `nlh->nlmsg_len` must lie within the buffer.
bool nft_rule_message_comments(const nlmsghdr* nlh, std::vector<std::string>* comments);

}  // namespace npt::netfilter
