#include "ip_addr.hpp"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace npt {

std::optional<IpAddr> IpAddr::parse(std::string_view text) {
    if (text.empty() || text.size() > INET6_ADDRSTRLEN) return std::nullopt;
    // Names are asked for far more often than addresses: anything but hex digits, '.' and ':' is not one, and
    // is turned away before inet_pton (which would turn it away too).
    for (const char c : text) {
        const bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex && c != '.' && c != ':') return std::nullopt;
    }
    char buf[INET6_ADDRSTRLEN + 1];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    IpAddr out;
    if (text.find(':') == std::string_view::npos) {
        if (inet_pton(AF_INET, buf, out.bytes.data()) != 1) return std::nullopt;
        out.family = IpFamily::V4;
        return out;
    }
    if (inet_pton(AF_INET6, buf, out.bytes.data()) != 1) return std::nullopt;
    out.family = IpFamily::V6;
    // An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address on the wire.
    static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(out.bytes.data(), kMapped, 12) == 0) {
        IpAddr v4;
        std::memcpy(v4.bytes.data(), out.bytes.data() + 12, 4);
        return v4;
    }
    return out;
}

IpAddr IpAddr::v4(uint32_t host_order) {
    IpAddr out;
    out.bytes[0] = static_cast<uint8_t>(host_order >> 24);
    out.bytes[1] = static_cast<uint8_t>(host_order >> 16);
    out.bytes[2] = static_cast<uint8_t>(host_order >> 8);
    out.bytes[3] = static_cast<uint8_t>(host_order);
    return out;
}

IpAddr IpAddr::from_bytes(IpFamily family, const uint8_t* data) {
    IpAddr out;
    out.family = family;
    std::memcpy(out.bytes.data(), data, family == IpFamily::V4 ? 4 : 16);
    return out;
}

std::string IpAddr::bracket_host(std::string_view host) {
    if (host.find(':') == std::string_view::npos) return std::string(host);
    std::string out;
    out.reserve(host.size() + 2);
    out += '[';
    out += host;
    out += ']';
    return out;
}

std::string IpAddr::str() const {
    char buf[INET6_ADDRSTRLEN];
    if (is_v4()) {
        // Dotted decimal by hand: inet_ntop goes through the printf machinery, and renderers print an address
        // or two per result.
        size_t n = 0;
        for (size_t i = 0; i < 4; ++i) {
            const unsigned v = bytes[i];
            if (i) buf[n++] = '.';
            if (v >= 100) buf[n++] = static_cast<char>('0' + v / 100);
            if (v >= 10) buf[n++] = static_cast<char>('0' + v / 10 % 10);
            buf[n++] = static_cast<char>('0' + v % 10);
        }
        return std::string(buf, n);
    }
    if (!inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf))) return "?";
    return buf;
}

size_t IpAddrHash::operator()(const IpAddr& a) const noexcept {
    // FNV-1a over the significant bytes; addresses are short and this keeps the index cheap.
    uint64_t h = 1469598103934665603ull ^ static_cast<uint8_t>(a.family);
    const size_t n = a.is_v4() ? 4 : 16;
    for (size_t i = 0; i < n; ++i) {
        h ^= a.bytes[i];
        h *= 1099511628211ull;
    }
    return static_cast<size_t>(h);
}

namespace {

void mask_to_prefix(IpAddr& addr, unsigned prefix) {
    const unsigned width = addr.bit_width();
    for (unsigned bit = prefix; bit < width; ++bit) addr.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
}

}  // namespace

std::optional<Cidr> Cidr::parse(std::string_view text, bool* had_host_bits) {
    const auto slash = text.find('/');
    if (slash == std::string_view::npos) return std::nullopt;
    auto addr = IpAddr::parse(text.substr(0, slash));
    if (!addr) return std::nullopt;
    // An IPv4-mapped literal keeps IPv6 prefix lengths; treat it as what it was written as.
    if (addr->is_v4() && text.substr(0, slash).find(':') != std::string_view::npos) return std::nullopt;
    const auto len_text = text.substr(slash + 1);
    unsigned prefix = 0;
    if (len_text.empty() || len_text.size() > 3) return std::nullopt;
    const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), prefix);
    if (ec != std::errc() || end != len_text.data() + len_text.size()) return std::nullopt;
    if (prefix > addr->bit_width()) return std::nullopt;
    Cidr out;
    out.base = *addr;
    out.prefix = static_cast<uint8_t>(prefix);
    mask_to_prefix(out.base, prefix);
    if (had_host_bits) *had_host_bits = !(out.base == *addr);
    return out;
}

std::string Cidr::str() const {
    return base.str() + "/" + std::to_string(prefix);
}

}  // namespace npt
