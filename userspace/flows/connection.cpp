#include "flows/connection.hpp"

#include <fmt/format.h>
#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <ctime>
#include <tuple>
#include <nlohmann/json.hpp>

namespace npt {

namespace {

using OrderedJson = nlohmann::ordered_json;

std::optional<std::string> optional_string(simdjson::dom::object obj, std::string_view key) {
    std::string_view v;
    if (obj[key].get(v) == simdjson::SUCCESS && !v.empty()) return std::string(v);
    return std::nullopt;
}

OrderedJson optional_json(const std::optional<std::string>& v) {
    return v ? OrderedJson(*v) : OrderedJson(nullptr);
}

OrderedJson end_json(const ConnectionEnd& e) {
    OrderedJson j;
    j["ip"] = e.ip.str();
    j["pod"] = optional_json(e.pod);
    j["namespace"] = optional_json(e.ns);
    j["workload"] = optional_json(e.workload);
    OrderedJson labels = OrderedJson::object();
    for (const auto& [k, v] : e.labels) labels[k] = v;
    j["labels"] = std::move(labels);
    return j;
}

}  // namespace

const char* side_name(Side s) {
    switch (s) {
        case Side::Client:
            return "client";
        case Side::Server:
            return "server";
        default:
            return "";
    }
}

const char* observed_by_name(ObservedBy o) {
    switch (o) {
        case ObservedBy::TcpState:
            return "tcp_state";
        case ObservedBy::Conntrack:
            return "conntrack";
        default:
            return "";
    }
}

std::string connection_json(const Connection& c) {
    OrderedJson j;
    j["src"] = end_json(c.src);
    OrderedJson dst = end_json(c.dst);
    dst["port"] = c.port;
    dst["service"] = optional_json(c.service);
    j["dst"] = std::move(dst);
    j["protocol"] = protocol_name(c.protocol);
    j["side"] = side_name(c.side);
    j["count"] = c.count;
    j["first_seen"] = c.first_seen ? OrderedJson(format_rfc3339(*c.first_seen)) : OrderedJson(nullptr);
    j["last_seen"] = c.last_seen ? OrderedJson(format_rfc3339(*c.last_seen)) : OrderedJson(nullptr);
    j["node"] = c.node;
    j["observed_by"] = observed_by_name(c.observed_by);
    return j.dump(-1, ' ', false, OrderedJson::error_handler_t::replace);
}

std::optional<TimePoint> parse_rfc3339(std::string_view t) {
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
    return TimePoint(std::chrono::seconds(secs)) + std::chrono::duration_cast<TimePoint::duration>(frac);
}

std::string format_rfc3339(TimePoint t) {
    const time_t secs = std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
    std::tm tm{};
    gmtime_r(&secs, &tm);
    return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                       tm.tm_min, tm.tm_sec);
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

Result<Connection> parse_connection(std::string_view text, std::string_view source, size_t lineno) {
    thread_local simdjson::dom::parser parser;
    const auto bad = [&](std::string_view what) { return Error{fmt::format("{} line {}: {}", source, lineno, what)}; };
    simdjson::dom::element root;
    if (auto err = parser.parse(simdjson::padded_string(text)).get(root))
        return bad(fmt::format("invalid JSON: {}", simdjson::error_message(err)));
    simdjson::dom::object obj, src, dst;
    if (root.get(obj)) return bad("expected a JSON object (one connection per line)");
    if (obj["src"].get(src)) return bad("src: expected an object with an ip");
    if (obj["dst"].get(dst)) return bad("dst: expected an object with an ip and a port");
    Connection c;
    c.line = std::string(text);
    std::string_view ip;
    if (src["ip"].get(ip)) return bad("src.ip: required");
    auto sip = IpAddr::parse(ip);
    if (!sip) return bad(fmt::format("src.ip: invalid IP address {:?}", ip));
    if (dst["ip"].get(ip)) return bad("dst.ip: required");
    auto dip = IpAddr::parse(ip);
    if (!dip) return bad(fmt::format("dst.ip: invalid IP address {:?}", ip));
    if (sip->family != dip->family) return bad("src.ip and dst.ip are of different address families");
    c.src.ip = *sip;
    c.dst.ip = *dip;
    int64_t port = 0;
    if (dst["port"].get(port) || port < 1 || port > 65535) return bad("dst.port: expected a number 1-65535");
    c.port = static_cast<uint16_t>(port);
    std::string_view proto = "TCP";
    if (auto p = obj["protocol"]; p.error() != simdjson::NO_SUCH_FIELD && p.get(proto))
        return bad("protocol: expected a string");
    auto protocol = parse_protocol(proto);
    if (!protocol) return bad(fmt::format("protocol: {:?} is not TCP, UDP or SCTP", proto));
    c.protocol = *protocol;
    for (auto [end, json, name] : {std::tuple{&c.src, src, "src"}, std::tuple{&c.dst, dst, "dst"}}) {
        end->pod = optional_string(json, "pod");
        end->ns = optional_string(json, "namespace");
        end->workload = optional_string(json, "workload");
        simdjson::dom::object labels;
        if (json["labels"].get(labels) == simdjson::SUCCESS) {
            for (auto [k, v] : labels) {
                std::string_view value;
                if (v.get(value))
                    return bad(fmt::format("{}.labels[{:?}]: expected a string", name, std::string_view(k)));
                end->labels.emplace_back(std::string(k), std::string(value));
            }
            std::sort(end->labels.begin(), end->labels.end());
            const auto twice = std::adjacent_find(end->labels.begin(), end->labels.end(),
                                                  [](const auto& a, const auto& b) { return a.first == b.first; });
            if (twice != end->labels.end())
                return bad(fmt::format("{}.labels: key {:?} given twice", name, twice->first));
        }
    }
    c.service = optional_string(dst, "service");
    if (auto side = optional_string(obj, "side")) {
        if (*side == "client")
            c.side = Side::Client;
        else if (*side == "server")
            c.side = Side::Server;
        else
            return bad(fmt::format("side: {:?} is not client or server", *side));
    }
    if (auto by = optional_string(obj, "observed_by")) {
        if (*by == "tcp_state")
            c.observed_by = ObservedBy::TcpState;
        else if (*by == "conntrack")
            c.observed_by = ObservedBy::Conntrack;
        else
            return bad(fmt::format("observed_by: {:?} is not tcp_state or conntrack", *by));
    }
    uint64_t count = 0;
    if (obj["count"].get(count) == simdjson::SUCCESS) c.count = count;
    for (auto [field, out] : {std::pair{"first_seen", &c.first_seen}, std::pair{"last_seen", &c.last_seen}}) {
        if (auto seen = optional_string(obj, field)) {
            *out = parse_rfc3339(*seen);
            if (!*out) return bad(fmt::format("{}: {:?} is not an RFC 3339 time", field, *seen));
        }
    }
    if (auto node = optional_string(obj, "node")) c.node = *node;
    return c;
}

Result<std::vector<Connection>> read_connections(std::istream& in, std::string_view source) {
    std::vector<Connection> out;
    std::string line;
    size_t lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto c = parse_connection(line, source, lineno);
        if (!c) return c.error();
        out.push_back(std::move(*c));
    }
    return out;
}

bool ConnectionFilter::matches(const Connection& c) const {
    if (since && (!c.last_seen || *c.last_seen < *since)) return false;
    if (!namespaces.empty()) {
        const auto in = [&](const std::optional<std::string>& ns) {
            return ns && std::find(namespaces.begin(), namespaces.end(), *ns) != namespaces.end();
        };
        if (!in(c.src.ns) && !in(c.dst.ns)) return false;
    }
    if (!pod.empty()) {
        const std::string id =
            pod.find('/') == std::string::npos && namespaces.size() == 1 ? namespaces.front() + "/" + pod : pod;
        if (c.src.pod != id && c.dst.pod != id) return false;
    }
    return true;
}

}  // namespace npt
