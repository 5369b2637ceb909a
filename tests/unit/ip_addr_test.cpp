// Addresses as text: what every output prints for an IP, checked against the C library's inet_ntop.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "common/ip_addr.hpp"

namespace npt {
namespace {

std::string ntop(const IpAddr& a) {
    char buf[INET6_ADDRSTRLEN];
    return inet_ntop(a.is_v4() ? AF_INET : AF_INET6, a.bytes.data(), buf, sizeof buf) ? buf : "?";
}

TEST(IpAddr, TextIsInetNtops) {
    // Every octet value in every position, then random addresses of both families.
    for (unsigned v = 0; v < 256; ++v) {
        for (int pos = 0; pos < 4; ++pos) {
            IpAddr a = *IpAddr::parse("1.2.3.4");
            a.bytes[pos] = static_cast<uint8_t>(v);
            EXPECT_EQ(a.str(), ntop(a));
            EXPECT_EQ(IpAddr::parse(a.str()), a);
        }
    }
    std::mt19937_64 rng(3);
    for (int i = 0; i < 10000; ++i) {
        IpAddr a = *IpAddr::parse(i % 2 ? "::" : "0.0.0.0");
        for (auto& b : a.bytes) b = static_cast<uint8_t>(rng() % 4 == 0 ? 0 : rng());
        if (a.is_v4()) std::fill(a.bytes.begin() + 4, a.bytes.end(), 0);
        EXPECT_EQ(a.str(), ntop(a));
    }
}

// parse() turns text away early when it has a character no address has; what it accepts and refuses is still
// exactly what inet_pton does: every literal below and random strings over an alphabet of address characters and
// the characters of names (letters beyond f, '-', '/', '%', ' ').
TEST(IpAddr, ParseAcceptsWhatInetPtonAccepts) {
    auto pton = [](const std::string& t) {
        unsigned char buf[16];
        return inet_pton(AF_INET, t.c_str(), buf) == 1 || inet_pton(AF_INET6, t.c_str(), buf) == 1;
    };
    std::vector<std::string> texts = {"10.1.2.3",
                                      "255.255.255.255",
                                      "0.0.0.0",
                                      "::",
                                      "::1",
                                      "fe80::1",
                                      "FE80::A:b",
                                      "2001:db8::ff00:42:8329",
                                      "::ffff:10.0.0.1",
                                      "1:2:3:4:5:6:7:8",
                                      "10.1.2",
                                      "10.1.2.3.4",
                                      "256.1.1.1",
                                      "10.1.2.3 ",
                                      " 10.1.2.3",
                                      "fe80::1%eth0",
                                      "10.1.2.3/32",
                                      "shop/cart-1",
                                      "cart",
                                      "abc",
                                      "dead:beef",
                                      "g::1",
                                      "1::2::3",
                                      ""};
    std::mt19937_64 rng(7);
    constexpr std::string_view kAlphabet = "0123456789abcdefABCDEF.:gz-/% ";
    for (int i = 0; i < 20000; ++i) {
        std::string t(1 + rng() % 12, ' ');
        for (auto& c : t) c = kAlphabet[rng() % kAlphabet.size()];
        texts.push_back(t);
    }
    size_t accepted = 0;
    for (const auto& t : texts) {
        ASSERT_EQ(IpAddr::parse(t).has_value(), pton(t)) << '"' << t << '"';
        accepted += pton(t);
    }
    EXPECT_GE(accepted, 10u);  // the literals that are addresses, at least
}

}  // namespace
}  // namespace npt
