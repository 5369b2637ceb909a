// One line of `explain --probes`: a JSON object {"from","to","port","protocol"} read into the question it
// asks, or the error its result line reports.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "output/json_output.hpp"
#include "policy/explainer.hpp"

namespace npt::cli {

struct PortSpec {
    uint16_t port = 0;
    Protocol protocol = Protocol::TCP;
};

// "5432" or "5432/UDP"; the protocol is default_protocol when the text names none.
Result<PortSpec> parse_port(std::string_view text, std::string_view default_protocol);

// kubectl's -n: a bare pod name is in ns. IP literals and NAMESPACE/POD are left alone.
std::string qualified(std::string_view name, std::string_view ns);

// What the command line says for every probe: -n, --protocol and --family.
struct ProbeDefaults {
    std::string ns;
    std::string protocol = "TCP";
    std::optional<int> family;
};

struct ProbeLine {
    std::optional<ExplainQuery> query;  // the question, when the line asks a valid one
    Json from;                          // the line's "from" as given (null if none): an error line echoes it
    std::string error;                  // otherwise, why not
};

ProbeLine parse_probe_line(const std::string& line, const ProbeDefaults& defaults);

// The same answer from nlohmann's DOM of the line: the contract, which parse_probe_line follows for the lines
// scripts write without building the DOM (probes_output_test and probe_line_fuzz compare the two).
ProbeLine parse_probe_line_dom(const std::string& line, const ProbeDefaults& defaults);

}  // namespace npt::cli
