// The netfilter rule that returned a flow's DROP verdict, from fexit programs on nft_do_chain (and the verdict
// expressions) and ipt_do_table/ip6t_do_table (bpf/rule_verdict.bpf.c). An extra where the kernel allows BPF
// trampolines: open() returns null with the reason where it does not (kernels that refuse fentry/fexit, neither
// nf_tables nor ip_tables loaded), and the drop capture works the same without it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "libbpf_log.hpp"
#include "netpol_trace/rule_verdict.h"

namespace npt::capture {

struct RuleVerdict {
    std::string backend;                 // "nftables" or "iptables-legacy"
    std::string table;                   // "filter", "npt_matrix", ...
    std::string chain;                   // the chain holding the rule ("FORWARD" for iptables-legacy's built-in chains)
    std::optional<uint64_t> handle;      // nftables rule handle (`nft -a list ruleset`)
    std::optional<std::string> comment;  // the first bytes of the rule's native comment (its userdata)
    uint8_t table_family = 0;            // NFPROTO_* of the nftables table (0: iptables-legacy)

    bool operator==(const RuleVerdict&) const = default;
};

class RuleAttribution {
  public:
    // Loads and attaches what this kernel allows; an error saying why (one line) when nothing attaches.
    static Result<std::unique_ptr<RuleAttribution>> open(const DebugSink& debug);
    ~RuleAttribution();
    RuleAttribution(const RuleAttribution&) = delete;
    RuleAttribution& operator=(const RuleAttribution&) = delete;

    // The DROP verdict recorded for this flow, if any.
    std::optional<RuleVerdict> lookup(const npt_rule_key& key) const;

    // "fexit on nft_do_chain, ipt_do_table": what is attached.
    std::string description() const;

    struct Impl;

  private:
    explicit RuleAttribution(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// The decoded verdict of a map value (exposed for tests). Pure.
RuleVerdict decode_rule_verdict(const npt_rule_value& value);

}  // namespace npt::capture
