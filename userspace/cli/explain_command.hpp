// `netpol-trace explain`: why a connection is allowed or denied, offline from state files.
#pragma once

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace npt::cli {

struct ExplainOptions {
    std::string from;
    std::string to;
    std::string ns;    // -n: the namespace of pods named without one
    std::string port;  // "5432" or "5432/UDP"
    std::string protocol = "TCP";
    std::optional<int> family;
    std::vector<std::string> state_files;
    std::string kubeconfig;
    std::string context;
    std::string output = "text";
    std::string probes;  // batch input: JSON lines, "-" = stdin
    bool fix = false;    // add verified fixes for every non-allowed verdict
};

void register_explain(CLI::App& app, ExplainOptions& opts);

// Runs the command; returns the exit status (0 allowed, 1 denied, 2 usage or input error).
int run_explain(const ExplainOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace npt::cli
