#include "state/observed_flows.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <charconv>
#include <ctime>

namespace npt {

namespace {

std::optional<std::string> optional_string(simdjson::dom::object obj, std::string_view key) {
    std::string_view v;
    if (obj[key].get(v) == simdjson::SUCCESS && !v.empty()) return std::string(v);
    return std::nullopt;
}

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view t) {
    // YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM|-HH:MM)
    if (t.size() < 20 || t[4] != '-' || t[7] != '-' || (t[10] != 'T' && t[10] != 't') || t[13] != ':' || t[16] != ':')
        return std::nullopt;
    const auto num = [&](size_t at, size_t len) -> std::optional<int> {
        int v = 0;
        auto [p, ec] = std::from_chars(t.data() + at, t.data() + at + len, v);
        if (ec != std::errc() || p != t.data() + at + len) return std::nullopt;
        return v;
    };
    const auto y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), s = num(17, 2);
    if (!y || !mo || !d || !h || !mi || !s || *mo < 1 || *mo > 12 || *d < 1 || *d > 31 || *h > 23 || *mi > 59 ||
        *s > 60)
        return std::nullopt;
    // The clock counts nanoseconds in 64 bits: years 1678 to 2262.
    if (*y < 1678 || *y > 2261) return std::nullopt;
    size_t at = 19;
    std::chrono::nanoseconds frac{0};
    if (at < t.size() && t[at] == '.') {
        size_t end = at + 1;
        while (end < t.size() && std::isdigit(static_cast<unsigned char>(t[end]))) ++end;
        if (end == at + 1) return std::nullopt;
        int64_t ns = 0, scale = 100'000'000;
        for (size_t i = at + 1; i < end && scale > 0; ++i, scale /= 10) ns += (t[i] - '0') * scale;
        frac = std::chrono::nanoseconds(ns);
        at = end;
    }
    int offset = 0;
    if (at < t.size() && (t[at] == 'Z' || t[at] == 'z')) {
        ++at;
    } else if (at + 6 == t.size() && (t[at] == '+' || t[at] == '-') && t[at + 3] == ':') {
        const auto oh = num(at + 1, 2), om = num(at + 4, 2);
        if (!oh || !om) return std::nullopt;
        offset = (t[at] == '-' ? -1 : 1) * (*oh * 3600 + *om * 60);
        at += 6;
    } else {
        return std::nullopt;
    }
    if (at != t.size()) return std::nullopt;
    std::tm tm{};
    tm.tm_year = *y - 1900;
    tm.tm_mon = *mo - 1;
    tm.tm_mday = *d;
    tm.tm_hour = *h;
    tm.tm_min = *mi;
    tm.tm_sec = *s;
    const time_t secs = timegm(&tm) - offset;
    return std::chrono::system_clock::time_point(std::chrono::seconds(secs)) +
           std::chrono::duration_cast<std::chrono::system_clock::duration>(frac);
}

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
    constexpr int64_t kMaxDuration = 36500LL * 86400;  // a hundred years: far beyond any retention
    if (text.empty()) return std::nullopt;
    int64_t total = 0;
    while (!text.empty()) {
        int64_t v = 0;
        auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || p == text.data() + text.size() || v < 0) return std::nullopt;
        const char unit = *p;
        const int64_t scale = unit == 's' ? 1 : unit == 'm' ? 60 : unit == 'h' ? 3600 : unit == 'd' ? 86400 : 0;
        if (scale == 0 || v > kMaxDuration / scale) return std::nullopt;
        total += v * scale;
        if (total > kMaxDuration) return std::nullopt;
        text.remove_prefix(static_cast<size_t>(p - text.data()) + 1);
    }
    return std::chrono::seconds(total);
}

Result<std::vector<ObservedFlow>> read_observed_flows(std::istream& in, std::string_view source) {
    std::vector<ObservedFlow> out;
    simdjson::dom::parser parser;
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const auto bad = [&](std::string_view what) {
            return Error{fmt::format("{} line {}: {}", source, lineno, what)};
        };
        simdjson::dom::element root;
        if (auto err = parser.parse(line).get(root)) return bad(fmt::format("invalid JSON: {}", simdjson::error_message(err)));
        simdjson::dom::object obj, src, dst;
        if (root.get(obj)) return bad("expected a JSON object (one observed connection per line)");
        if (obj["src"].get(src)) return bad("src: expected an object with an ip");
        if (obj["dst"].get(dst)) return bad("dst: expected an object with an ip and a port");
        ObservedFlow f;
        f.line = line;
        std::string_view ip;
        if (src["ip"].get(ip)) return bad("src.ip: required");
        auto sip = IpAddr::parse(ip);
        if (!sip) return bad(fmt::format("src.ip: invalid IP address \"{}\"", ip));
        if (dst["ip"].get(ip)) return bad("dst.ip: required");
        auto dip = IpAddr::parse(ip);
        if (!dip) return bad(fmt::format("dst.ip: invalid IP address \"{}\"", ip));
        if (sip->family != dip->family) return bad("src.ip and dst.ip are of different address families");
        f.src_ip = *sip;
        f.dst_ip = *dip;
        int64_t port = 0;
        if (dst["port"].get(port) || port < 1 || port > 65535) return bad("dst.port: expected a number 1-65535");
        f.port = static_cast<uint16_t>(port);
        std::string_view proto = "TCP";
        if (auto p = obj["protocol"]; p.error() != simdjson::NO_SUCH_FIELD && p.get(proto))
            return bad("protocol: expected a string");
        auto protocol = parse_protocol(proto);
        if (!protocol) return bad(fmt::format("protocol: \"{}\" is not TCP, UDP or SCTP", proto));
        f.protocol = *protocol;
        f.src_pod = optional_string(src, "pod");
        f.dst_pod = optional_string(dst, "pod");
        f.service = optional_string(dst, "service");
        if (auto side = optional_string(obj, "side")) {
            if (*side != "client" && *side != "server") return bad(fmt::format("side: \"{}\" is not client or server", *side));
            f.side = *side;
        }
        uint64_t count = 0;
        if (obj["count"].get(count) == simdjson::SUCCESS) f.count = count;
        if (auto seen = optional_string(obj, "last_seen")) {
            f.last_seen = parse_rfc3339(*seen);
            if (!f.last_seen) return bad(fmt::format("last_seen: \"{}\" is not an RFC 3339 time", *seen));
        }
        if (auto node = optional_string(obj, "node")) f.node = *node;
        out.push_back(std::move(f));
    }
    return out;
}

}  // namespace npt
