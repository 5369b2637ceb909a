// What the running kernel and process allow, probed before loading anything.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct btf;

namespace npt::capture {

enum class AttachMode { kTpBtf, kRawTp, kTracepoint };

std::string_view to_string(AttachMode mode);  // "tp_btf", "raw_tp", "tracepoint"
std::optional<AttachMode> parse_attach_mode(std::string_view name);

inline constexpr const char* kVmlinuxBtfPath = "/sys/kernel/btf/vmlinux";

struct KernelFeatures {
    bool btf_present = false;       // /sys/kernel/btf/vmlinux readable
    bool tp_btf_kfree_skb = false;  // BTF has btf_trace_kfree_skb: tp_btf can attach
    bool reason_arg = false;        // BTF has enum skb_drop_reason: the tracepoint passes a reason (>= 5.17)
    bool rdonly_cast = false;       // kfunc bpf_rdonly_cast (>= 6.2)
    uint32_t nf_conn_btf_id = 0;    // struct nf_conn in vmlinux BTF (0: conntrack is a module or absent)
    bool privileged = false;        // root, or CAP_BPF + CAP_PERFMON, or CAP_SYS_ADMIN
    bool tracefs_mounted = false;   // needed only by the classic tracepoint fallback
    uint32_t hz = 0;                // kernel tick rate (CONFIG_HZ); 0 if it could not be determined

    // Attach modes worth trying, best first.
    std::vector<AttachMode> candidate_modes() const;
};

// `vmlinux` may be null (no BTF): only the privilege and tracefs probes then run.
KernelFeatures probe_kernel_features(const struct btf* vmlinux);

// CONFIG_HZ of the running kernel: from /boot/config-<release> or /proc/config.gz when present, else
// calibrated from two readings of /proc/timer_list (jiffies vs monotonic time, ~0.1 s, needs root). nullopt
// if none works.
std::optional<uint32_t> detect_kernel_hz();
// The /proc/timer_list calibration alone (exposed for tests).
std::optional<uint32_t> calibrate_kernel_hz();
// Rounds a measured tick rate to the usual CONFIG_HZ value within 5%, else to the nearest integer. Pure.
uint32_t snap_hz(double measured);

// Effective capabilities of this process allow loading and attaching tracing programs.
bool has_bpf_privileges();

// Directory of tracefs' "events" if mounted ("/sys/kernel/tracing" or "/sys/kernel/debug/tracing"), else "".
std::string tracefs_dir();

}  // namespace npt::capture
