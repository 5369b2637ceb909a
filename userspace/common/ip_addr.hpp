// IP addresses and CIDR blocks for both families, as the policy engine and the capture share them.
#pragma once

#include <array>
#include <bit>
#include <cstring>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace npt {

enum class IpFamily : uint8_t { V4 = 4, V6 = 6 };

// An IPv4 or IPv6 address. IPv4 lives in the first four bytes; the rest stay zero so that
// equality and hashing are plain byte comparisons.
struct IpAddr {
    std::array<uint8_t, 16> bytes{};
    IpFamily family = IpFamily::V4;

    static std::optional<IpAddr> parse(std::string_view text);
    static IpAddr v4(uint32_t host_order);
    static IpAddr from_bytes(IpFamily family, const uint8_t* data);

    bool is_v4() const { return family == IpFamily::V4; }
    unsigned bit_width() const { return is_v4() ? 32 : 128; }
    std::string str() const;
    // The address as the host of "host:port": IPv6 in brackets ("[fd00::1]"), IPv4 as it is.
    std::string host_str() const { return bracket_host(str()); }

    // A host name or address text as the host of "host:port": bracketed when it holds a ':' (an IPv6 address).
    static std::string bracket_host(std::string_view host);

    friend auto operator<=>(const IpAddr&, const IpAddr&) = default;
    friend bool operator==(const IpAddr&, const IpAddr&) = default;
};

struct IpAddrHash {
    size_t operator()(const IpAddr& a) const noexcept;
};

// A CIDR block, always stored masked (a block written with host bits set, e.g. 10.0.0.1/24, is
// the block 10.0.0.0/24, as Kubernetes treats it).
struct Cidr {
    IpAddr base;
    uint8_t prefix = 0;

    // Parses "a.b.c.d/n" or "x::y/n". When host bits were set, *had_host_bits is set to true.
    static std::optional<Cidr> parse(std::string_view text, bool* had_host_bits = nullptr);

    bool contains(const IpAddr& ip) const { return ip.family == base.family && prefix_equal(ip, base, prefix); }
    bool contains(const Cidr& other) const {
        return other.base.family == base.family && other.prefix >= prefix && prefix_equal(other.base, base, prefix);
    }
    std::string str() const;

    friend bool operator==(const Cidr&, const Cidr&) = default;

    // The first `bits` bits of both addresses agree: two 64-bit compares, inline (the policy engine asks this for
    // every ipBlock and networks peer it evaluates).
    static bool prefix_equal(const IpAddr& a, const IpAddr& b, unsigned bits) {
        const auto word = [](const IpAddr& x, int i) {
            uint64_t w;
            std::memcpy(&w, x.bytes.data() + 8 * i, 8);
            if constexpr (std::endian::native == std::endian::little) w = __builtin_bswap64(w);
            return w;  // the first byte is the most significant, as in network order
        };
        const auto mask = [](unsigned n) { return n == 0 ? 0 : n >= 64 ? ~uint64_t{0} : ~uint64_t{0} << (64 - n); };
        return ((word(a, 0) ^ word(b, 0)) & mask(bits)) == 0 &&
               ((word(a, 1) ^ word(b, 1)) & mask(bits > 64 ? bits - 64 : 0)) == 0;
    }
};

}  // namespace npt
