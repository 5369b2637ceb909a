// Turns the kernel's drop records (npt_drop_event, include/netpol_trace/drop_event.h) into DropEvents: the
// reason's name, the enforcement point, backend and stack from the kernel's symbols, the netfilter rule that
// returned the DROP, interface names, wall-clock times. Needs no privilege and no BPF: what it learns from the
// system (the reason names of this kernel's BTF, kallsyms, other network namespaces, the rule verdicts) is passed
// in, so recorded events decode the same in a unit test as live ones in the capture.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "drop_event.hpp"
#include "drop_reasons.hpp"
#include "enforcement.hpp"
#include "kernel_symbolizer.hpp"
#include "netns_inspector.hpp"
#include "netpol_trace/drop_event.h"
#include "rule_attribution.hpp"

namespace npt::capture {

class DropDecoder {
  public:
    struct Sources {
        const ReasonTable* reasons = nullptr;       // required
        const KernelSymbolizer* symbols = nullptr;  // null: no stack names, the location as an address
        const RuleAttribution* rules = nullptr;     // null: no rule verdicts
        NetnsQueries* netns = nullptr;              // null: nothing read from other network namespaces
        uint32_t own_netns_inum = 0;                // interface names of this netns come from if_indextoname
        size_t max_flows = 65536;                   // bounds the per-flow attribution cache (2x)
    };
    explicit DropDecoder(Sources sources);

    // One ring-buffer record. Attribution depends on the stack, the reason, the drop site and the netns, not on
    // the addresses: flows dropped at the same place share one. Resumed events carry no stack and reuse their
    // flow's.
    DropEvent decode(const npt_drop_event& e);

    // The record a flow's map entry stands for, for a flow whose ring-buffer record was lost: a new-flow event
    // without stack, interfaces or pre-DNAT destination.
    static npt_drop_event record_of(const FlowKey& key, const npt_flow_value& value);

  private:
    struct Attribution {
        Enforcement enforcement;
        std::string location_symbol;
        std::vector<std::string> stack;
    };
    struct SiteKey {
        std::vector<uint64_t> stack;
        uint32_t reason;
        uint32_t netns_inum;
        uint64_t location;
        bool operator==(const SiteKey&) const = default;
    };
    struct SiteKeyHash {
        size_t operator()(const SiteKey& k) const;
    };

    static std::vector<uint64_t> stack_of(const npt_drop_event& e);
    Attribution attribute(const npt_drop_event& e, const std::string& reason, std::vector<uint64_t> ips);

    Sources src_;
    std::unordered_map<SiteKey, std::shared_ptr<const Attribution>, SiteKeyHash> site_attributions_;
    std::unordered_map<FlowKey, std::shared_ptr<const Attribution>, FlowKeyHash> flow_attributions_;
};

}  // namespace npt::capture
