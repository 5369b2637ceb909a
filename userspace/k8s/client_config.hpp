// Where the API server is and how to authenticate to it, resolved as kubectl does:
//   1. --kubeconfig PATH: only that file (it must exist);
//   2. else $KUBECONFIG, a ':'-separated list merged (kubeconfig.hpp);
//   3. else ~/.kube/config;
//   4. when none of those gives any configuration and no --context was asked for, the in-cluster config of
//      a pod: $KUBERNETES_SERVICE_HOST/PORT and the service account's token, ca.crt and namespace.
// The context is --context, else the kubeconfig's current-context.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "k8s/kubeconfig.hpp"

namespace npt::k8s {

inline constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

// The parts of the process environment the configuration depends on; tests give their own.
struct ConfigEnvironment {
    std::optional<std::string> kubeconfig;    // $KUBECONFIG
    std::optional<std::string> home;          // $HOME
    std::optional<std::string> service_host;  // $KUBERNETES_SERVICE_HOST
    std::optional<std::string> service_port;  // $KUBERNETES_SERVICE_PORT
    std::string service_account_dir = kServiceAccountDir;

    static ConfigEnvironment from_process();
};

// What the user asked for on the command line.
struct ClientOptions {
    std::string kubeconfig;                        // --kubeconfig
    std::string context;                           // --context
    std::optional<ConfigEnvironment> environment;  // nullopt: the process environment
};

// One API server and the credentials for it: the result of resolving a context.
struct ClientConfig {
    std::string context;  // the kubeconfig context; empty for the in-cluster config
    bool in_cluster = false;
    std::string server;  // https://host:port[/path], no trailing '/'
    std::string ns;      // the context's namespace ("default" when unset)

    // TLS
    std::string ca_pem;     // CA certificates; empty: the system's roots
    std::string ca_source;  // where ca_pem came from, for messages ("/path/ca.crt", "certificate-authority-data")
    bool insecure_skip_tls_verify = false;
    std::string tls_server_name;  // name to verify the server certificate against (and send as SNI)
    std::string proxy_url;

    // Credentials (at most one of token/tokenFile, username/password; a client certificate may go with them)
    std::string token;
    std::string token_file;  // re-read when it changes (bound service-account tokens rotate)
    std::string client_certificate_pem, client_key_pem;    // inline data
    std::string client_certificate_file, client_key_file;  // re-read when they change
    std::string username, password;
    std::string impersonate, impersonate_uid;
    std::vector<std::string> impersonate_groups;
    std::optional<ExecConfig> exec;

    // `context "prod" (https://10.0.0.1:6443)` or `in-cluster config (https://10.96.0.1:443)`: the start of
    // every error about this server.
    std::string describe() const;
};

Result<ClientConfig> load_client_config(const ClientOptions& options);
// Shorthand with the process environment: load_client_config({kubeconfig, context}).
Result<ClientConfig> load_client_config(const std::string& kubeconfig, const std::string& context);

// The context of an already loaded kubeconfig (empty context: its current-context).
Result<ClientConfig> client_config_from_kubeconfig(const Kubeconfig& config, const std::string& context);

// Whether the environment looks like a pod's: the service host and port set and a token file present.
bool in_cluster_available(const ConfigEnvironment& env);
Result<ClientConfig> in_cluster_config(const ConfigEnvironment& env);

}  // namespace npt::k8s
