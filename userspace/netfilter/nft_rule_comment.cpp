#include "netfilter/nft_rule_comment.hpp"

#include <libmnl/libmnl.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/udata.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_tables_compat.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/xt_comment.h>

#include <algorithm>
#include <cstring>
#include <optional>

namespace npt::netfilter {

namespace {

// A string stored with or without its terminating NUL, never read past `len`.
std::string bounded_string(const void* data, size_t len) {
    const char* s = static_cast<const char*>(data);
    return std::string(s, strnlen(s, len));
}

std::optional<std::string> userdata_comment(const void* data, size_t len) {
    if (data == nullptr || len == 0) return std::nullopt;
    // Userdata is a list of {u8 type, u8 length, value} records. nftnl_udata_parse trusts the lengths, so
    // the records are walked here with every length checked against the data.
    const auto* p = static_cast<const uint8_t*>(data);
    std::optional<std::string> comment;
    for (size_t off = 0; off + 2 <= len;) {
        const uint8_t type = p[off];
        const size_t value_len = p[off + 1];
        if (value_len > len - off - 2) break;  // malformed: stop at the last whole record
        if (type == NFTNL_UDATA_RULE_COMMENT) comment = bounded_string(p + off + 2, value_len);
        off += 2 + value_len;
    }
    if (!comment || comment->empty()) return std::nullopt;
    return comment;
}

std::optional<std::string> userdata_comment(const nftnl_rule* rule) {
    if (!nftnl_rule_is_set(rule, NFTNL_RULE_USERDATA)) return std::nullopt;
    uint32_t len = 0;
    const void* data = nftnl_rule_get_data(rule, NFTNL_RULE_USERDATA, &len);
    return userdata_comment(data, len);
}

// The text of an xt_comment_info, "" when empty.
std::string xt_comment_text(const void* info, size_t len) {
    return bounded_string(info, std::min<size_t>(len, sizeof(xt_comment_info::comment)));
}

void xt_comments(const nftnl_rule* rule, std::vector<std::string>& out) {
    nftnl_expr_iter* iter = nftnl_expr_iter_create(rule);
    if (iter == nullptr) return;
    for (nftnl_expr* expr = nftnl_expr_iter_next(iter); expr != nullptr; expr = nftnl_expr_iter_next(iter)) {
        const char* name = nftnl_expr_get_str(expr, NFTNL_EXPR_NAME);
        if (name == nullptr || std::strcmp(name, "match") != 0) continue;
        const char* match = nftnl_expr_get_str(expr, NFTNL_EXPR_MT_NAME);
        if (match == nullptr || std::strcmp(match, "comment") != 0) continue;
        uint32_t len = 0;
        const void* info = nftnl_expr_get(expr, NFTNL_EXPR_MT_INFO, &len);
        if (info == nullptr || len == 0) continue;
        std::string text = xt_comment_text(info, len);
        if (!text.empty()) out.push_back(std::move(text));
    }
    nftnl_expr_iter_destroy(iter);
}

// --- straight from the message ---
// libnftnl is not used for rule messages: it takes any attribute it does not expect, in the rule or in any of
// its expressions, for a broken kernel ABI and exits the process (abi_breakage()), and dereferences a null
// pointer for an expression without a name. Only the attributes a comment lives in are read here, every
// length checked by libmnl; the last of repeated attributes counts, as in libnftnl.

// The attributes of a message or a nest, the last one of each type up to `N - 1`.
template <size_t N>
struct Attrs {
    const nlattr* tb[N] = {};
    static int store(const nlattr* attr, void* data) {
        const uint16_t type = mnl_attr_get_type(attr);
        if (type < N) static_cast<Attrs*>(data)->tb[type] = attr;
        return MNL_CB_OK;
    }
    const nlattr* operator[](size_t type) const { return tb[type]; }
};

std::string attr_string(const nlattr* attr) {
    return bounded_string(mnl_attr_get_payload(attr), mnl_attr_get_payload_len(attr));
}

// The non-empty comments of the xt "comment" matches in an NFTA_RULE_EXPRESSIONS list, in order.
void xt_comments(const nlattr* expressions, std::vector<std::string>& out) {
    const auto* end =
        static_cast<const char*>(mnl_attr_get_payload(expressions)) + mnl_attr_get_payload_len(expressions);
    for (auto* elem = static_cast<const nlattr*>(mnl_attr_get_payload(expressions));
         mnl_attr_ok(elem, static_cast<int>(end - reinterpret_cast<const char*>(elem))); elem = mnl_attr_next(elem)) {
        if (mnl_attr_get_type(elem) != NFTA_LIST_ELEM) continue;
        Attrs<NFTA_EXPR_MAX + 1> expr;
        mnl_attr_parse_nested(elem, Attrs<NFTA_EXPR_MAX + 1>::store, &expr);
        if (expr[NFTA_EXPR_NAME] == nullptr || expr[NFTA_EXPR_DATA] == nullptr) continue;
        if (attr_string(expr[NFTA_EXPR_NAME]) != "match") continue;
        Attrs<NFTA_MATCH_MAX + 1> match;
        mnl_attr_parse_nested(expr[NFTA_EXPR_DATA], Attrs<NFTA_MATCH_MAX + 1>::store, &match);
        if (match[NFTA_MATCH_NAME] == nullptr || match[NFTA_MATCH_INFO] == nullptr) continue;
        if (attr_string(match[NFTA_MATCH_NAME]) != "comment") continue;
        std::string text = xt_comment_text(mnl_attr_get_payload(match[NFTA_MATCH_INFO]),
                                           mnl_attr_get_payload_len(match[NFTA_MATCH_INFO]));
        if (!text.empty()) out.push_back(std::move(text));
    }
}

}  // namespace

std::vector<std::string> nft_rule_comments(const nftnl_rule* rule) {
    std::vector<std::string> out;
    if (rule == nullptr) return out;
    if (auto c = userdata_comment(rule)) out.push_back(std::move(*c));
    xt_comments(rule, out);
    return out;
}

bool nft_rule_message_comments(const nlmsghdr* nlh, std::vector<std::string>* comments) {
    if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES || NFNL_MSG_TYPE(nlh->nlmsg_type) != NFT_MSG_NEWRULE) {
        return false;
    }
    if (nlh->nlmsg_len < mnl_nlmsg_size(sizeof(nfgenmsg))) return false;
    Attrs<NFTA_RULE_MAX + 1> rule;
    mnl_attr_parse(nlh, sizeof(nfgenmsg), Attrs<NFTA_RULE_MAX + 1>::store, &rule);
    std::vector<std::string> found;
    if (const nlattr* udata = rule[NFTA_RULE_USERDATA]) {
        if (auto c = userdata_comment(mnl_attr_get_payload(udata), mnl_attr_get_payload_len(udata)))
            found.push_back(std::move(*c));
    }
    if (rule[NFTA_RULE_EXPRESSIONS] != nullptr) xt_comments(rule[NFTA_RULE_EXPRESSIONS], found);
    *comments = std::move(found);
    return true;
}

}  // namespace npt::netfilter
