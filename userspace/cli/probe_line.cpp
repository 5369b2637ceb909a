#include "cli/probe_line.hpp"

#include <fmt/format.h>

#include <charconv>

#include "common/ip_addr.hpp"

namespace npt::cli {

std::string qualified(const std::string& name, const std::string& ns) {
    if (ns.empty() || name.find('/') != std::string::npos || IpAddr::parse(name)) return name;
    return ns + "/" + name;
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

ProbeLine parse_probe_line(const std::string& line, const ProbeDefaults& d) {
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

}  // namespace npt::cli
