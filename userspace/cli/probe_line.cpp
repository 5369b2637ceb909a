#include "cli/probe_line.hpp"

#include <fmt/format.h>

#include <charconv>
#include <optional>

#include "common/ip_addr.hpp"
#include "common/json_writer.hpp"

namespace npt::cli {

std::string qualified(std::string_view name, std::string_view ns) {
    if (ns.empty() || name.find('/') != std::string_view::npos || IpAddr::parse(name)) return std::string(name);
    std::string out;
    out.reserve(ns.size() + 1 + name.size());
    out.append(ns).append(1, '/').append(name);
    return out;
}

Result<PortSpec> parse_port(std::string_view text, std::string_view default_protocol) {
    PortSpec spec;
    std::string_view num = text, proto = default_protocol;
    if (auto slash = text.find('/'); slash != std::string_view::npos) {
        num = text.substr(0, slash);
        proto = text.substr(slash + 1);
    }
    unsigned value = 0;
    auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), value);
    if (num.empty() || ec != std::errc() || end != num.data() + num.size() || value < 1 || value > 65535)
        return Error{fmt::format("invalid port {:?}: expected a number 1-65535, optionally with /TCP, /UDP or /SCTP",
                                 std::string(text))};
    auto p = parse_protocol(proto);
    if (!p) return Error{fmt::format("invalid protocol {:?}: expected TCP, UDP or SCTP", std::string(proto))};
    spec.port = static_cast<uint16_t>(value);
    spec.protocol = *p;
    return spec;
}

ProbeLine parse_probe_line_dom(const std::string& line, const ProbeDefaults& d) {
    ProbeLine r;
    auto fail = [&](std::string msg) {
        r.error = std::move(msg);
        return std::move(r);
    };
    auto probe = Json::parse(line, nullptr, false);
    if (probe.is_discarded() || !probe.is_object()) return fail("not a JSON object");
    if (probe.contains("from")) r.from = probe["from"];
    if (!probe.contains("from") || !probe["from"].is_string() || !probe.contains("to") || !probe["to"].is_string())
        return fail("\"from\" and \"to\" must be strings");
    std::string port_text;
    if (probe.contains("port") && probe["port"].is_number_integer())
        port_text = std::to_string(probe["port"].get<long long>());
    else if (probe.contains("port") && probe["port"].is_string())
        port_text = probe["port"].get<std::string>();
    else
        return fail("\"port\" must be a number");
    std::string proto = d.protocol;
    if (probe.contains("protocol")) {
        if (!probe["protocol"].is_string()) return fail("\"protocol\" must be a string");
        proto = probe["protocol"].get<std::string>();
    }
    auto port = parse_port(port_text, proto);
    if (!port) return fail(port.error().message);
    ExplainQuery q{qualified(probe["from"].get<std::string>(), d.ns), qualified(probe["to"].get<std::string>(), d.ns),
                   port->port, port->protocol, std::nullopt};
    if (d.family) q.family = *d.family == 6 ? IpFamily::V6 : IpFamily::V4;
    r.query = std::move(q);
    return r;
}

namespace {

// The fields of a line that is one flat object of plain strings (printable ASCII, no escapes) and a port
// that is such a string or a small non-negative integer, each key at most once: what scripts write. Any
// other line, valid or not, is left to the DOM parse.
struct PlainProbe {
    std::optional<std::string_view> from, to, port, protocol;
};

bool is_json_space(char c) {
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

std::optional<PlainProbe> read_plain_probe(std::string_view line) {
    const size_t n = line.size();
    size_t i = 0;
    auto skip_space = [&] {
        while (i < n && is_json_space(line[i])) ++i;
    };
    auto plain_string = [&](std::optional<std::string_view>& out) {
        if (out || i >= n || line[i] != '"') return false;
        // It ends at its first byte that is not plain: a quote, or the line is not one of these.
        const size_t j = i + 1 + json_plain_prefix(line.substr(i + 1));
        if (j >= n || line[j] != '"') return false;
        out = line.substr(i + 1, j - i - 1);
        i = j + 1;
        return true;
    };
    PlainProbe p;
    skip_space();
    if (i >= n || line[i] != '{') return std::nullopt;
    ++i;
    for (;;) {
        skip_space();
        std::optional<std::string_view> key;
        if (!plain_string(key)) return std::nullopt;
        skip_space();
        if (i >= n || line[i] != ':') return std::nullopt;
        ++i;
        skip_space();
        if (*key == "from") {
            if (!plain_string(p.from)) return std::nullopt;
        } else if (*key == "to") {
            if (!plain_string(p.to)) return std::nullopt;
        } else if (*key == "protocol") {
            if (!plain_string(p.protocol)) return std::nullopt;
        } else if (*key == "port") {
            if (p.port) return std::nullopt;
            if (i < n && line[i] == '"') {
                if (!plain_string(p.port)) return std::nullopt;
            } else {
                size_t j = i;
                while (j < n && line[j] >= '0' && line[j] <= '9') ++j;
                // JSON has no leading zeros; nine digits keep the DOM's integer and its decimal text alike.
                if (j == i || j - i > 9 || (j - i > 1 && line[i] == '0')) return std::nullopt;
                p.port = line.substr(i, j - i);
                i = j;
            }
        } else {
            return std::nullopt;
        }
        skip_space();
        if (i < n && line[i] == ',') {
            ++i;
            continue;
        }
        if (i < n && line[i] == '}') {
            ++i;
            break;
        }
        return std::nullopt;
    }
    skip_space();
    if (i != n || !p.from || !p.to || !p.port) return std::nullopt;
    return p;
}

}  // namespace

ProbeLine parse_probe_line(const std::string& line, const ProbeDefaults& d) {
    auto plain = read_plain_probe(line);
    if (!plain) return parse_probe_line_dom(line, d);
    ProbeLine r;
    auto port = parse_port(*plain->port, plain->protocol ? *plain->protocol : std::string_view(d.protocol));
    if (!port) {
        r.from = std::string(*plain->from);
        r.error = port.error().message;
        return r;
    }
    ExplainQuery q{qualified(*plain->from, d.ns), qualified(*plain->to, d.ns), port->port, port->protocol,
                   std::nullopt};
    if (d.family) q.family = *d.family == 6 ? IpFamily::V6 : IpFamily::V4;
    r.query = std::move(q);
    r.from = *plain->from;
    return r;
}

}  // namespace npt::cli
