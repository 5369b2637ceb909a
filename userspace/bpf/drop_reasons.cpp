#include "drop_reasons.hpp"

#include <bpf/btf.h>

#include <algorithm>
#include <cctype>

namespace npt::capture {
namespace {

constexpr std::string_view kReasonPrefix = "SKB_DROP_REASON_";
constexpr std::string_view kSubsysPrefix = "SKB_DROP_REASON_SUBSYS_";

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::toupper(static_cast<unsigned char>(x)) == std::toupper(static_cast<unsigned char>(y));
           });
}

std::string_view strip_prefix(std::string_view name, std::string_view prefix) {
    if (name.size() > prefix.size() && iequals(name.substr(0, prefix.size()), prefix)) {
        return name.substr(prefix.size());
    }
    return name;
}

// Enumerators of a named enum (ENUM or ENUM64) in `btf`; empty when the enum does not exist.
std::vector<std::pair<std::string, uint32_t>> enumerators_of(const struct btf* btf, const char* enum_name) {
    std::vector<std::pair<std::string, uint32_t>> out;
    int id = btf__find_by_name_kind(btf, enum_name, BTF_KIND_ENUM);
    if (id < 0) {
        id = btf__find_by_name_kind(btf, enum_name, BTF_KIND_ENUM64);
    }
    if (id < 0) {
        return out;
    }
    const struct btf_type* t = btf__type_by_id(btf, id);
    const int n = btf_vlen(t);
    if (btf_is_enum(t)) {
        const struct btf_enum* e = btf_enum(t);
        for (int i = 0; i < n; ++i) {
            // Stored as 32 bits; SUBSYS_MASK (0xffff0000) is negative when the enum is signed.
            out.emplace_back(btf__name_by_offset(btf, e[i].name_off), static_cast<uint32_t>(e[i].val));
        }
    } else {
        const struct btf_enum64* e = btf_enum64(t);
        for (int i = 0; i < n; ++i) {
            out.emplace_back(btf__name_by_offset(btf, e[i].name_off), static_cast<uint32_t>(btf_enum64_value(&e[i])));
        }
    }
    return out;
}

}  // namespace

ReasonTable::ReasonTable(std::vector<DropReason> reasons, std::vector<DropReason> subsystems)
    : reasons_(std::move(reasons)), subsystems_(std::move(subsystems)) {
    std::sort(reasons_.begin(), reasons_.end(),
              [](const DropReason& a, const DropReason& b) { return a.value < b.value; });
}

ReasonTable ReasonTable::from_enumerators(const std::vector<std::pair<std::string, uint32_t>>& enumerators,
                                          const std::vector<std::pair<std::string, uint32_t>>& subsys_enumerators) {
    std::vector<DropReason> reasons;
    for (const auto& [raw, value] : enumerators) {
        std::string_view name = raw;
        if (name.substr(0, kReasonPrefix.size()) != kReasonPrefix) {
            continue;  // SKB_NOT_DROPPED_YET, SKB_CONSUMED: not drops
        }
        name.remove_prefix(kReasonPrefix.size());
        // MAX is a sentinel; SUBSYS_MASK and anything above 16 bits describe the subsystem encoding.
        if (name == "MAX" || name.substr(0, 7) == "SUBSYS_" || (value >> NPT_REASON_SUBSYS_SHIFT) != 0) {
            continue;
        }
        reasons.push_back({std::string(name), value});
    }
    std::vector<DropReason> subsystems;
    for (const auto& [raw, value] : subsys_enumerators) {
        std::string_view name = raw;
        if (name.substr(0, kSubsysPrefix.size()) != kSubsysPrefix) {
            continue;
        }
        name.remove_prefix(kSubsysPrefix.size());
        if (name == "NUM" || name == "CORE") {
            continue;
        }
        subsystems.push_back({std::string(name), value});
    }
    return ReasonTable(std::move(reasons), std::move(subsystems));
}

ReasonTable ReasonTable::from_btf(const struct btf* btf) {
    return from_enumerators(enumerators_of(btf, "skb_drop_reason"), enumerators_of(btf, "skb_drop_reason_subsys"));
}

std::vector<std::string> ReasonTable::names() const {
    std::vector<std::string> out;
    out.reserve(reasons_.size());
    for (const auto& r : reasons_) {
        out.push_back(r.name);
    }
    return out;
}

std::string ReasonTable::name_of(uint32_t value) const {
    if (value == NPT_REASON_UNKNOWN) {
        return "unknown";
    }
    const uint32_t subsys = value >> NPT_REASON_SUBSYS_SHIFT;
    if (subsys != 0) {
        const uint32_t code = value & 0xffffu;
        for (const auto& s : subsystems_) {
            if (s.value == subsys) {
                return s.name + ":" + std::to_string(code);
            }
        }
        return "SUBSYS_" + std::to_string(subsys) + ":" + std::to_string(code);
    }
    auto it = std::lower_bound(reasons_.begin(), reasons_.end(), value,
                               [](const DropReason& r, uint32_t v) { return r.value < v; });
    if (it != reasons_.end() && it->value == value) {
        return it->name;
    }
    return "REASON_" + std::to_string(value);
}

std::optional<uint32_t> ReasonTable::value_of(std::string_view name) const {
    const std::string_view bare = strip_prefix(name, kReasonPrefix);
    for (const auto& r : reasons_) {
        if (iequals(r.name, bare)) {
            return r.value;
        }
    }
    return std::nullopt;
}

bool ReasonSelection::contains(uint32_t value) const {
    if (value >> NPT_REASON_SUBSYS_SHIFT) {
        const uint32_t subsys = value >> NPT_REASON_SUBSYS_SHIFT;
        return subsys < NPT_MAX_SUBSYS && ((subsys_mask >> subsys) & 1u);
    }
    if (value >= NPT_REASON_BITMAP_BITS) {
        return high_reasons;
    }
    return (bitmap[value / 64] >> (value % 64)) & 1u;
}

std::vector<std::string> default_reason_names(const ReasonTable& table) {
    std::vector<std::string> out;
    for (const char* name : {"NETFILTER_DROP", "TC_INGRESS", "TC_EGRESS", "BPF_CGROUP_EGRESS"}) {
        if (table.value_of(name)) {
            out.emplace_back(name);
        }
    }
    for (const auto& r : table.reasons()) {
        if (r.name.rfind("XDP", 0) == 0) {
            out.push_back(r.name);
        }
    }
    return out;
}

Result<ReasonSelection> select_reasons(const ReasonTable& table, const std::vector<std::string>& names, bool all) {
    ReasonSelection sel;
    for (const auto& n : names) {
        if (iequals(n, "all")) {
            all = true;
        }
    }
    if (all) {
        sel.all = true;
        sel.bitmap.fill(~uint64_t{0});
        sel.subsys_mask = ~uint64_t{0};
        sel.high_reasons = true;
        sel.names = table.names();
        return sel;
    }
    const std::vector<std::string> wanted = names.empty() ? default_reason_names(table) : names;
    for (const auto& n : wanted) {
        const auto value = table.value_of(n);
        if (!value) {
            if (table.empty()) {
                return Error{"unknown drop reason '" + n +
                             "': this kernel's BTF has no enum skb_drop_reason (drops carry no reason); use all"};
            }
            std::string valid;
            for (const auto& r : table.reasons()) {
                valid += (valid.empty() ? "" : ", ") + r.name;
            }
            return Error{"unknown drop reason '" + n + "'; valid: " + valid + ", or all"};
        }
        if (*value < NPT_REASON_BITMAP_BITS) {
            sel.bitmap[*value / 64] |= uint64_t{1} << (*value % 64);
        } else {
            // Reasons beyond the bitmap exist only on kernels far newer than this code: keep them all.
            sel.high_reasons = true;
        }
        const std::string canonical = table.name_of(*value);
        if (std::find(sel.names.begin(), sel.names.end(), canonical) == sel.names.end()) {
            sel.names.push_back(canonical);
        }
    }
    return sel;
}

}  // namespace npt::capture
