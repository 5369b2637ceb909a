// kubeconfig files as kubectl reads them: the v1 Config schema, KUBECONFIG merging, and relative paths
// resolved against the file that holds them.
//
// Merging (KUBECONFIG=a:b:c): for clusters, users and contexts the first file to define a name wins, the
// whole entry; current-context comes from the first file that sets it. Files that do not exist are skipped;
// an empty file is an empty config. Within one file a name given twice keeps the later entry, as client-go's
// list-to-map conversion does.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace npt::k8s {

struct ExecEnvVar {
    std::string name;
    std::string value;
};

// users[].user.exec: a credential plugin (client.authentication.k8s.io).
struct ExecConfig {
    std::string api_version;  // client.authentication.k8s.io/v1 or /v1beta1
    std::string command;      // made absolute when relative with a '/' (./bin/plugin), else looked up in PATH
    std::vector<std::string> args;
    std::vector<ExecEnvVar> env;
    std::string install_hint;
    bool provide_cluster_info = false;
    std::string interactive_mode;  // Never, IfAvailable, Always; empty when not given
};

struct KubeconfigCluster {
    std::string server;
    std::string certificate_authority;       // a path, absolute
    std::string certificate_authority_data;  // PEM, decoded from base64
    bool insecure_skip_tls_verify = false;
    std::string tls_server_name;
    std::string proxy_url;
    std::string source;  // the file that defined it
};

struct KubeconfigUser {
    std::string token;
    std::string token_file;               // absolute
    std::string client_certificate;       // a path, absolute
    std::string client_certificate_data;  // PEM, decoded
    std::string client_key;               // a path, absolute
    std::string client_key_data;          // PEM, decoded
    std::string username;
    std::string password;
    std::string impersonate;  // as
    std::string impersonate_uid;
    std::vector<std::string> impersonate_groups;
    std::optional<ExecConfig> exec;
    std::string auth_provider;  // the name of a legacy auth-provider (gcp, azure, oidc): not supported
    std::string source;
};

struct KubeconfigContext {
    std::string cluster;
    std::string user;
    std::string ns;
    std::string source;
};

struct Kubeconfig {
    std::map<std::string, KubeconfigCluster> clusters;
    std::map<std::string, KubeconfigUser> users;
    std::map<std::string, KubeconfigContext> contexts;
    std::string current_context;
    std::vector<std::string> files;  // the files read, in order (for messages)

    bool empty() const { return clusters.empty() && users.empty() && contexts.empty() && current_context.empty(); }
};

// Parses one file's text. `path` names it in errors and anchors relative paths (made absolute against the
// current directory first). Errors: `kubeconfig PATH: users[0].user.client-key-data: invalid base64`.
Result<Kubeconfig> parse_kubeconfig(std::string_view text, std::string_view path);

// Adds `later` into `first`: names `first` already has are kept.
void merge_kubeconfig(Kubeconfig& first, Kubeconfig later);

// Reads and merges the files in order. A missing file is an error only when `missing_ok` is false.
Result<Kubeconfig> load_kubeconfig_files(const std::vector<std::string>& paths, bool missing_ok);

// KUBECONFIG's value split on ':' with empty entries dropped (and duplicates, as kubectl does).
std::vector<std::string> split_kubeconfig_env(std::string_view value);

}  // namespace npt::k8s
