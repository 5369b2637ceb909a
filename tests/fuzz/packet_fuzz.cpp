// libFuzzer target for parse_packet: any bytes, split into a network and a transport span, yield a tuple or
// nothing, never a read outside the spans (each is copied into a buffer of exactly its size, so AddressSanitizer
// sees any overread), a crash or a hang. The first byte chooses the split: the network span is that many bytes
// of the rest (all of it, with no separate transport header, when the byte is at least the rest's length).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "netfilter/packet_tuple.hpp"

namespace {

std::unique_ptr<uint8_t[]> copy(const uint8_t* data, size_t size) {
    auto out = std::make_unique<uint8_t[]>(size);
    if (size > 0) std::memcpy(out.get(), data, size);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    using npt::netfilter::PacketTuple;
    using npt::netfilter::parse_packet;
    if (size == 0) return 0;
    const size_t rest = size - 1;
    const size_t split = data[0] < rest ? data[0] : rest;
    const size_t network_size = split;
    const size_t transport_size = rest - split;

    auto network = copy(data + 1, network_size);
    auto transport = copy(data + 1 + split, transport_size);
    const auto tuple = parse_packet({network.get(), network_size}, {transport.get(), transport_size});

    // Deterministic, and only ports for protocols that have them.
    const auto again = parse_packet({network.get(), network_size}, {transport.get(), transport_size});
    if (tuple.has_value() != again.has_value() || (tuple && !(*tuple == *again))) std::abort();
    if (tuple && tuple->protocol != 6 && tuple->protocol != 17 && tuple->protocol != 132 && tuple->protocol != 136 &&
        (tuple->sport != 0 || tuple->dport != 0)) {
        std::abort();
    }
    if (tuple && tuple->src.family != tuple->dst.family) std::abort();

    // The whole input as one NFLOG-style payload, too.
    auto whole = copy(data + 1, rest);
    const auto joined = parse_packet({whole.get(), rest});
    if (joined) {
        static npt::netfilter::RecentPackets<size_t> recent(1000, 64, 2);
        static uint64_t clock = 0;
        recent.add(*joined, ++clock, size);
        if (recent.find(*joined, clock, 0) == nullptr || recent.size() > 64) std::abort();
        (void)npt::netfilter::PacketTupleHash{}(*joined);
    }
    return 0;
}
