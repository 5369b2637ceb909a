#include "kernel_features.hpp"

#include <bpf/btf.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace npt::capture {
namespace {

constexpr int kCapSysAdmin = 21;
constexpr int kCapPerfmon = 38;
constexpr int kCapBpf = 39;

bool path_exists(const char* path) {
    return ::access(path, F_OK) == 0;
}

std::optional<uint64_t> effective_capabilities() {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("CapEff:", 0) == 0) {
            try {
                return std::stoull(line.substr(7), nullptr, 16);
            } catch (...) {
                return std::nullopt;
            }
        }
    }
    return std::nullopt;
}

struct TimerListSample {
    uint64_t now_ns = 0;
    uint64_t jiffies = 0;
};

std::optional<TimerListSample> read_timer_list() {
    std::ifstream in("/proc/timer_list");
    std::string line;
    TimerListSample s;
    bool have_now = false;
    while (std::getline(in, line)) {
        if (!have_now && line.rfind("now at ", 0) == 0) {
            s.now_ns = std::strtoull(line.c_str() + 7, nullptr, 10);
            have_now = true;
        } else if (line.rfind("jiffies: ", 0) == 0) {
            s.jiffies = std::strtoull(line.c_str() + 9, nullptr, 10);
            return have_now ? std::optional(s) : std::nullopt;
        }
    }
    return std::nullopt;
}

// The first sample after jiffies changes: the tick happened during the last read.
std::optional<TimerListSample> sample_at_tick_edge() {
    auto prev = read_timer_list();
    if (!prev) {
        return std::nullopt;
    }
    for (int i = 0; i < 500; ++i) {
        auto cur = read_timer_list();
        if (!cur) {
            return std::nullopt;
        }
        if (cur->jiffies != prev->jiffies) {
            return cur;
        }
        prev = cur;
    }
    return std::nullopt;
}

std::optional<uint32_t> parse_config_hz(const char* line) {
    if (std::strncmp(line, "CONFIG_HZ=", 10) != 0) {
        return std::nullopt;
    }
    const unsigned long hz = std::strtoul(line + 10, nullptr, 10);
    return hz > 0 && hz < 100000 ? std::optional(static_cast<uint32_t>(hz)) : std::nullopt;
}

// Kernel config as a plain file (/boot/config-<release>) or gzip (/proc/config.gz); zlib reads both.
std::optional<uint32_t> hz_from_config(const std::string& path) {
    gzFile f = ::gzopen(path.c_str(), "rb");
    if (f == nullptr) {
        return std::nullopt;
    }
    std::optional<uint32_t> hz;
    char line[512];
    while (!hz && ::gzgets(f, line, sizeof(line)) != nullptr) {
        hz = parse_config_hz(line);
    }
    ::gzclose(f);
    return hz;
}

}  // namespace

uint32_t snap_hz(double measured) {
    for (double hz : {100.0, 250.0, 300.0, 1000.0}) {
        if (std::fabs(measured - hz) / hz < 0.05) {
            return static_cast<uint32_t>(hz);
        }
    }
    return static_cast<uint32_t>(std::lround(measured));
}

std::optional<uint32_t> detect_kernel_hz() {
    utsname u{};
    if (::uname(&u) == 0) {
        if (auto hz = hz_from_config(std::string("/boot/config-") + u.release)) {
            return hz;
        }
    }
    if (auto hz = hz_from_config("/proc/config.gz")) {
        return hz;
    }
    return calibrate_kernel_hz();
}

std::optional<uint32_t> calibrate_kernel_hz() {
    // Each read of /proc/timer_list takes up to ~2 ms: 100 ms keeps the estimate within ~2%.
    const auto a = sample_at_tick_edge();
    if (!a) {
        return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const auto b = sample_at_tick_edge();
    if (!b || b->jiffies <= a->jiffies || b->now_ns <= a->now_ns) {
        return std::nullopt;
    }
    const double measured =
        static_cast<double>(b->jiffies - a->jiffies) * 1e9 / static_cast<double>(b->now_ns - a->now_ns);
    if (measured < 24 || measured > 10000) {
        return std::nullopt;
    }
    return snap_hz(measured);
}

std::string_view to_string(AttachMode mode) {
    switch (mode) {
        case AttachMode::kTpBtf:
            return "tp_btf";
        case AttachMode::kRawTp:
            return "raw_tp";
        case AttachMode::kTracepoint:
            return "tracepoint";
    }
    return "unknown";
}

std::optional<AttachMode> parse_attach_mode(std::string_view name) {
    for (auto m : {AttachMode::kTpBtf, AttachMode::kRawTp, AttachMode::kTracepoint}) {
        if (name == to_string(m)) {
            return m;
        }
    }
    return std::nullopt;
}

bool has_bpf_privileges() {
    const auto caps = effective_capabilities();
    if (!caps) {
        return ::geteuid() == 0;
    }
    const auto has = [&](int cap) { return (*caps >> cap) & 1u; };
    return has(kCapSysAdmin) || (has(kCapBpf) && has(kCapPerfmon));
}

std::string tracefs_dir() {
    for (const char* dir : {"/sys/kernel/tracing", "/sys/kernel/debug/tracing"}) {
        if (path_exists((std::string(dir) + "/events").c_str())) {
            return dir;
        }
    }
    return "";
}

KernelFeatures probe_kernel_features(const struct btf* vmlinux) {
    KernelFeatures f;
    f.btf_present = ::access(kVmlinuxBtfPath, R_OK) == 0;
    f.privileged = has_bpf_privileges();
    f.tracefs_mounted = !tracefs_dir().empty();
    if (vmlinux != nullptr) {
        f.tp_btf_kfree_skb = btf__find_by_name_kind(vmlinux, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF) > 0;
        f.reason_arg = btf__find_by_name_kind(vmlinux, "skb_drop_reason", BTF_KIND_ENUM) > 0 ||
                       btf__find_by_name_kind(vmlinux, "skb_drop_reason", BTF_KIND_ENUM64) > 0;
        f.rdonly_cast = btf__find_by_name_kind(vmlinux, "bpf_rdonly_cast", BTF_KIND_FUNC) > 0;
        const int id = btf__find_by_name_kind(vmlinux, "nf_conn", BTF_KIND_STRUCT);
        f.nf_conn_btf_id = id > 0 ? static_cast<uint32_t>(id) : 0;
    }
    return f;
}

std::vector<AttachMode> KernelFeatures::candidate_modes() const {
    std::vector<AttachMode> modes;
    if (tp_btf_kfree_skb) {
        modes.push_back(AttachMode::kTpBtf);
    }
    modes.push_back(AttachMode::kRawTp);
    modes.push_back(AttachMode::kTracepoint);
    return modes;
}

}  // namespace npt::capture
