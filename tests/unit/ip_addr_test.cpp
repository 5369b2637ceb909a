// Addresses as text: what every output prints for an IP, checked against the C library's inet_ntop.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

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

}  // namespace
}  // namespace npt
