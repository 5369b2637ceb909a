#include "state/k8s_validation.hpp"

#include <fmt/format.h>

namespace npt {

namespace {

constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxSubdomainLength = 253;

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_lower_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// [A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?
bool is_name_body(std::string_view s) {
    if (s.empty() || !is_alnum(s.front()) || !is_alnum(s.back())) return false;
    for (char c : s) {
        if (!is_alnum(c) && c != '-' && c != '_' && c != '.') return false;
    }
    return true;
}

// Lowercase RFC 1123 subdomain: dot-separated labels of [a-z0-9-] that start and end alphanumeric.
bool is_dns_subdomain(std::string_view s) {
    if (s.empty() || s.size() > kMaxSubdomainLength) return false;
    size_t start = 0;
    while (true) {
        const size_t dot = s.find('.', start);
        const std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
        if (label.empty() || !is_lower_alnum(label.front()) || !is_lower_alnum(label.back())) return false;
        for (char c : label) {
            if (!is_lower_alnum(c) && c != '-') return false;
        }
        if (dot == std::string_view::npos) return true;
        start = dot + 1;
    }
}

constexpr const char* kNameCharset =
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character";

}  // namespace

std::optional<std::string> label_key_problem(std::string_view key) {
    std::string_view name = key;
    if (const size_t slash = key.find('/'); slash != std::string_view::npos) {
        const std::string_view prefix = key.substr(0, slash);
        name = key.substr(slash + 1);
        if (name.find('/') != std::string_view::npos) return "a qualified name may contain at most one '/'";
        if (prefix.empty()) return "prefix part must be non-empty";
        if (!is_dns_subdomain(prefix)) {
            return "prefix part must be a lowercase RFC 1123 subdomain of at most 253 characters";
        }
    }
    if (name.empty()) return "name part must be non-empty";
    if (name.size() > kMaxNameLength) return "name part must be no more than 63 characters";
    if (!is_name_body(name)) return fmt::format("name part {}", kNameCharset);
    return std::nullopt;
}

std::optional<std::string> label_value_problem(std::string_view value) {
    if (value.empty()) return std::nullopt;
    if (value.size() > kMaxNameLength) return "must be no more than 63 characters";
    if (!is_name_body(value)) return fmt::format("must be empty or {}", kNameCharset);
    return std::nullopt;
}

std::optional<std::string> object_name_problem(std::string_view name) {
    if (is_dns_subdomain(name)) return std::nullopt;
    return "must be a lowercase RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' and '.', "
           "starting and "
           "ending with a letter or digit";
}

std::optional<std::string> namespace_name_problem(std::string_view name) {
    if (name.size() <= kMaxNameLength && name.find('.') == std::string_view::npos && is_dns_subdomain(name)) {
        return std::nullopt;
    }
    return "must be a lowercase RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', starting and "
           "ending "
           "with a letter or digit";
}

std::optional<std::string> port_name_problem(std::string_view name) {
    if (name.empty() || name.size() > 15) return "must be 1-15 characters";
    bool letter = false;
    for (char c : name) {
        if (c >= 'a' && c <= 'z') {
            letter = true;
        } else if (!(c >= '0' && c <= '9') && c != '-') {
            return "must contain only lowercase alphanumerics (a-z, 0-9) and '-'";
        }
    }
    if (name.find("--") != std::string_view::npos) return "must not contain consecutive '-'";
    if (name.front() == '-' || name.back() == '-') return "must not begin or end with '-'";
    if (!letter) return "must contain at least one letter (a-z)";
    return std::nullopt;
}

std::optional<Protocol> parse_api_protocol(std::string_view text) {
    if (text == "TCP") return Protocol::TCP;
    if (text == "UDP") return Protocol::UDP;
    if (text == "SCTP") return Protocol::SCTP;
    return std::nullopt;
}

}  // namespace npt
