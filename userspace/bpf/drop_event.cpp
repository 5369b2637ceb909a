#include "drop_event.hpp"

#include <time.h>

#include <cstring>

#include "common/ip_addr.hpp"

namespace npt::capture {
namespace {

uint64_t clock_ns(clockid_t id) {
    timespec ts{};
    clock_gettime(id, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

std::chrono::system_clock::time_point to_wall_clock(uint64_t mono_ns) {
    const uint64_t now_mono = clock_ns(CLOCK_MONOTONIC);
    const uint64_t now_real = clock_ns(CLOCK_REALTIME);
    const int64_t age = static_cast<int64_t>(now_mono) - static_cast<int64_t>(mono_ns);
    const int64_t wall = static_cast<int64_t>(now_real) - age;
    return std::chrono::system_clock::time_point(
        std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::nanoseconds(wall)));
}

FlowCounts to_counts(const npt_flow_value& v) {
    FlowCounts c;
    c.count = v.count;
    c.first_ns = v.first_ns;
    c.last_ns = v.last_ns;
    c.first_seen = to_wall_clock(v.first_ns);
    c.last_seen = to_wall_clock(v.last_ns);
    c.last_sport = v.last_sport;
    c.tcp_flags = v.tcp_flags;
    c.icmp_type = v.icmp_type;
    c.icmp_code = v.icmp_code;
    c.ct_state = std::string(ct_state_name(v.ct_state));
    return c;
}

std::optional<IpAddr> ip_of(uint8_t family, const uint8_t* bytes) {
    if (family == NPT_AF_INET) {
        return IpAddr::from_bytes(IpFamily::V4, bytes);
    }
    if (family == NPT_AF_INET6) {
        return IpAddr::from_bytes(IpFamily::V6, bytes);
    }
    return std::nullopt;
}

uint8_t npt_family_of(const IpAddr& ip) {
    return ip.is_v4() ? NPT_AF_INET : NPT_AF_INET6;
}

std::string Endpoint::to_string() const {
    return ip.host_str() + ":" + std::to_string(port);
}

size_t FlowKeyHash::operator()(const FlowKey& k) const {
    // FNV-1a over the bytes: the key is padding-free and zero-initialised on both sides.
    const auto* p = reinterpret_cast<const unsigned char*>(&k);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < sizeof(FlowKey); ++i) {
        h = (h ^ p[i]) * 1099511628211ULL;
    }
    return static_cast<size_t>(h);
}

std::string_view ct_state_name(uint8_t state) {
    switch (state) {
        case NPT_CT_NONE:
            return "none";
        case NPT_CT_NEW:
            return "new";
        case NPT_CT_ESTABLISHED:
            return "established";
        case NPT_CT_RELATED:
            return "related";
        case NPT_CT_REPLY:
            return "reply";
        case NPT_CT_RELATED_REPLY:
            return "related-reply";
        case NPT_CT_UNTRACKED:
            return "untracked";
        case NPT_CT_INVALID:
            return "invalid";
        case NPT_CT_UNAVAILABLE:
            return "unavailable";
        default:
            return "none";
    }
}

std::string protocol_name(uint8_t protocol) {
    switch (protocol) {
        case 1:
            return "icmp";
        case 6:
            return "tcp";
        case 17:
            return "udp";
        case 58:
            return "icmpv6";
        case 132:
            return "sctp";
        case 136:
            return "udplite";
        default:
            return std::to_string(protocol);
    }
}

}  // namespace npt::capture

bool operator==(const npt_flow_key& a, const npt_flow_key& b) {
    return std::memcmp(&a, &b, sizeof(a)) == 0;
}
