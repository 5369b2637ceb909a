#include "state/objects.hpp"

#include <cctype>

namespace npt {

const char* protocol_name(Protocol p) {
    switch (p) {
        case Protocol::TCP:
            return "TCP";
        case Protocol::UDP:
            return "UDP";
        case Protocol::SCTP:
            return "SCTP";
        case Protocol::ICMP:
            return "ICMP";
        case Protocol::ICMPv6:
            return "ICMPv6";
        case Protocol::Other:
            return "other";
    }
    return "?";
}

std::optional<Protocol> parse_protocol(std::string_view text) {
    auto equals = [&](std::string_view upper) {
        if (text.size() != upper.size()) return false;
        for (size_t i = 0; i < text.size(); ++i) {
            if (std::toupper(static_cast<unsigned char>(text[i])) != upper[i]) return false;
        }
        return true;
    };
    if (equals("TCP")) return Protocol::TCP;
    if (equals("UDP")) return Protocol::UDP;
    if (equals("SCTP")) return Protocol::SCTP;
    return std::nullopt;
}

const char* rule_action_name(RuleAction a) {
    switch (a) {
        case RuleAction::Accept:
            return "Accept";
        case RuleAction::Deny:
            return "Deny";
        case RuleAction::Pass:
            return "Pass";
    }
    return "?";
}

const char* cluster_policy_kind_name(ClusterPolicyKind k) {
    switch (k) {
        case ClusterPolicyKind::ClusterNetworkPolicy:
            return "ClusterNetworkPolicy";
        case ClusterPolicyKind::AdminNetworkPolicy:
            return "AdminNetworkPolicy";
        case ClusterPolicyKind::BaselineAdminNetworkPolicy:
            return "BaselineAdminNetworkPolicy";
    }
    return "?";
}

std::string ClusterNetworkPolicy::id() const {
    switch (kind) {
        case ClusterPolicyKind::ClusterNetworkPolicy:
            return name;
        case ClusterPolicyKind::AdminNetworkPolicy:
            return "AdminNetworkPolicy/" + name;
        case ClusterPolicyKind::BaselineAdminNetworkPolicy:
            return "BaselineAdminNetworkPolicy/" + name;
    }
    return name;
}

}  // namespace npt
