// Drop-reason names and values of the running kernel, read from BTF (`enum skb_drop_reason`): the numbers
// move between kernels, so nothing here is hard-coded except the default selection by name.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "netpol_trace/drop_event.h"

struct btf;

namespace npt::capture {

struct DropReason {
    std::string name;  // without the SKB_DROP_REASON_ prefix, e.g. "NETFILTER_DROP"
    uint32_t value = 0;
};

class ReasonTable {
  public:
    ReasonTable() = default;
    // `reasons`: the core reasons; `subsystems`: id -> name of enum skb_drop_reason_subsys (may be empty).
    explicit ReasonTable(std::vector<DropReason> reasons, std::vector<DropReason> subsystems = {});

    // Reads `enum skb_drop_reason` (and `enum skb_drop_reason_subsys` when present) from kernel BTF. A kernel
    // without the enum (before 5.17) gives an empty table: every drop then has reason "unknown".
    static ReasonTable from_btf(const struct btf* btf);
    // Builds a table from raw enumerator (name, value) pairs as BTF lists them: keeps SKB_DROP_REASON_* drop
    // reasons, strips the prefix, skips the MAX sentinel and SUBSYS_MASK. Exposed for tests with a fake BTF.
    static ReasonTable from_enumerators(const std::vector<std::pair<std::string, uint32_t>>& enumerators,
                                        const std::vector<std::pair<std::string, uint32_t>>& subsys_enumerators);

    bool empty() const { return reasons_.empty(); }
    const std::vector<DropReason>& reasons() const { return reasons_; }
    std::vector<std::string> names() const;

    // "NETFILTER_DROP"; "unknown" for NPT_REASON_UNKNOWN; "OPENVSWITCH:3" for a subsystem reason;
    // "REASON_<n>" for a value this kernel's BTF does not name.
    std::string name_of(uint32_t value) const;
    // Case-insensitive, with or without the SKB_DROP_REASON_ prefix.
    std::optional<uint32_t> value_of(std::string_view name) const;

  private:
    std::vector<DropReason> reasons_;     // sorted by value
    std::vector<DropReason> subsystems_;  // id -> name
};

// What the BPF reason filter keeps.
struct ReasonSelection {
    std::array<uint64_t, NPT_REASON_BITMAP_WORDS> bitmap{};
    uint64_t subsys_mask = 0;
    bool high_reasons = false;  // core reasons beyond the bitmap ("all" only)
    bool all = false;
    std::vector<std::string> names;  // the selected reasons, canonical names

    bool contains(uint32_t value) const;
};

// The reasons kept by default: NETFILTER_DROP, TC_INGRESS, TC_EGRESS, BPF_CGROUP_EGRESS and every XDP*
// reason, those of them this kernel has.
std::vector<std::string> default_reason_names(const ReasonTable& table);

// `names` empty and !all: the default set. "all" (in `names` or `all`) keeps every reason. An unknown name is
// an error naming it and listing the valid ones.
Result<ReasonSelection> select_reasons(const ReasonTable& table, const std::vector<std::string>& names, bool all);

}  // namespace npt::capture
