// Packet 5-tuples from the raw headers netfilter copies to userspace.
#include "netfilter/packet_tuple.hpp"

#include <netinet/in.h>
#include <time.h>

namespace npt::netfilter {

namespace {

uint16_t read_be16(std::span<const uint8_t> bytes, size_t offset) {
    return static_cast<uint16_t>((bytes[offset] << 8) | bytes[offset + 1]);
}

bool has_ports(uint8_t protocol) {
    return protocol == IPPROTO_TCP || protocol == IPPROTO_UDP || protocol == IPPROTO_SCTP ||
           protocol == IPPROTO_UDPLITE;
}

bool is_ipv6_extension(uint8_t next) {
    return next == IPPROTO_HOPOPTS || next == IPPROTO_ROUTING || next == IPPROTO_DSTOPTS || next == IPPROTO_FRAGMENT ||
           next == IPPROTO_AH;
}

// Fills the ports from the transport header. `transport` is either the separately given header or the
// bytes behind the IP header (`behind`, possibly cut short). False when the protocol has ports and fewer than
// the four port bytes are present: a tuple without them would be a wrong tuple, not a partial one.
bool fill_ports(PacketTuple& tuple, std::span<const uint8_t> transport, std::span<const uint8_t> behind) {
    if (!has_ports(tuple.protocol)) return true;
    const std::span<const uint8_t> l4 = transport.empty() ? behind : transport;
    if (l4.size() < 4) return false;
    tuple.sport = read_be16(l4, 0);
    tuple.dport = read_be16(l4, 2);
    return true;
}

std::optional<PacketTuple> parse_ipv4(std::span<const uint8_t> network, std::span<const uint8_t> transport) {
    constexpr size_t kMinHeader = 20;
    if (network.size() < kMinHeader) return std::nullopt;
    const size_t header_len = static_cast<size_t>(network[0] & 0x0f) * 4;
    if (header_len < kMinHeader) return std::nullopt;

    PacketTuple tuple;
    tuple.src = IpAddr::from_bytes(IpFamily::V4, network.data() + 12);
    tuple.dst = IpAddr::from_bytes(IpFamily::V4, network.data() + 16);
    tuple.protocol = network[9];

    // A fragment other than the first carries payload bytes where the ports would be.
    const uint16_t fragment_offset = read_be16(network, 6) & 0x1fff;
    if (fragment_offset != 0) return tuple;

    // With a separate transport header the network span may stop before the end of the options (nftables
    // traces copy at most 40 bytes of it); otherwise the transport header starts behind the options.
    std::span<const uint8_t> behind;
    if (transport.empty()) {
        if (header_len > network.size()) return has_ports(tuple.protocol) ? std::nullopt : std::optional(tuple);
        behind = network.subspan(header_len);
    }
    if (!fill_ports(tuple, transport, behind)) return std::nullopt;
    return tuple;
}

std::optional<PacketTuple> parse_ipv6(std::span<const uint8_t> network, std::span<const uint8_t> transport) {
    constexpr size_t kFixedHeader = 40;
    if (network.size() < kFixedHeader) return std::nullopt;

    PacketTuple tuple;
    tuple.src = IpAddr::from_bytes(IpFamily::V6, network.data() + 8);
    tuple.dst = IpAddr::from_bytes(IpFamily::V6, network.data() + 24);

    uint8_t next = network[6];
    size_t offset = kFixedHeader;
    // Each extension header advances `offset` by at least 8 bytes, so the walk ends within the span.
    while (is_ipv6_extension(next)) {
        // The chain runs past the bytes we have (a cut NFLOG copy, or a trace message's network header,
        // which the kernel cuts at 40 bytes): the transport protocol is unknown.
        if (network.size() - offset < 8) return std::nullopt;
        const auto header = network.subspan(offset);
        size_t length = 0;
        if (next == IPPROTO_FRAGMENT) {
            length = 8;
            if ((read_be16(header, 2) & 0xfff8) != 0) {  // not the first fragment: no transport header
                tuple.protocol = header[0];
                return tuple;
            }
        } else if (next == IPPROTO_AH) {
            length = (static_cast<size_t>(header[1]) + 2) * 4;
        } else {
            length = (static_cast<size_t>(header[1]) + 1) * 8;
        }
        next = header[0];
        if (length > network.size() - offset) {
            // The header is cut short: its successor is known, but not where it starts. A separately given
            // transport header still serves.
            if (is_ipv6_extension(next)) return std::nullopt;
            tuple.protocol = next;
            if (!fill_ports(tuple, transport, {})) return std::nullopt;
            return tuple;
        }
        offset += length;
    }
    tuple.protocol = next;
    std::span<const uint8_t> behind;
    if (transport.empty()) behind = network.subspan(offset);
    if (!fill_ports(tuple, transport, behind)) return std::nullopt;
    return tuple;
}

}  // namespace

std::optional<PacketTuple> parse_packet(std::span<const uint8_t> network, std::span<const uint8_t> transport) {
    if (network.empty()) return std::nullopt;
    switch (network[0] >> 4) {
        case 4:
            return parse_ipv4(network, transport);
        case 6:
            return parse_ipv6(network, transport);
        default:
            return std::nullopt;
    }
}

uint64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

size_t PacketTupleHash::operator()(const PacketTuple& t) const noexcept {
    const IpAddrHash ip_hash;
    uint64_t h = ip_hash(t.src);
    auto mix = [&h](uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2); };
    mix(ip_hash(t.dst));
    mix((static_cast<uint64_t>(t.protocol) << 32) | (static_cast<uint64_t>(t.sport) << 16) | t.dport);
    return static_cast<size_t>(h);
}

}  // namespace npt::netfilter
