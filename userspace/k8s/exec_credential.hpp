// Exec credential plugins (client.authentication.k8s.io/v1 and v1beta1): run the kubeconfig's command
// with its args and env plus KUBERNETES_EXEC_INFO, and read the ExecCredential it prints.
//
// netpol-trace runs plugins non-interactively (stdin is /dev/null, spec.interactive is false): a plugin
// that needs a terminal (interactiveMode: Always) is an error telling the user to log in with kubectl first.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "k8s/kubeconfig.hpp"

namespace npt::k8s {

struct ExecCredential {
    std::string token;
    std::string client_certificate_pem;
    std::string client_key_pem;
    std::optional<std::chrono::system_clock::time_point> expiration;  // absent: valid until rejected
};

// What spec.cluster tells a plugin when provideClusterInfo is set.
struct ExecClusterInfo {
    std::string server;
    std::string tls_server_name;
    bool insecure_skip_tls_verify = false;
    std::string ca_pem;
    std::string proxy_url;
};

// The KUBERNETES_EXEC_INFO value.
std::string exec_info_json(const ExecConfig& exec, const ExecClusterInfo& cluster);

// Parses a plugin's standard output. Errors start with `exec plugin "<command>": `.
Result<ExecCredential> parse_exec_credential(std::string_view json, const ExecConfig& exec);

// Runs the plugin and parses its output; stderr is kept for the error message.
Result<ExecCredential> run_exec_plugin(const ExecConfig& exec, const ExecClusterInfo& cluster,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(60));

// RFC 3339 date-time ("2024-05-01T10:00:00Z", fractional seconds and offsets accepted).
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view text);

}  // namespace npt::k8s
