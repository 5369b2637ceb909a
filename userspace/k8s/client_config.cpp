#include "k8s/client_config.hpp"

#include <fmt/format.h>
#include <sys/stat.h>

#include <cstdlib>

#include "k8s/file_util.hpp"

namespace npt::k8s {

namespace {

std::optional<std::string> env_var(const char* name) {
    const char* v = std::getenv(name);
    if (!v) return std::nullopt;
    return std::string(v);
}

std::string join_names(const auto& map) {
    std::string out;
    for (const auto& [name, _] : map) {
        if (!out.empty()) out += ", ";
        out += name;
    }
    return out.empty() ? "none" : out;
}

std::string files_phrase(const Kubeconfig& cfg) {
    if (cfg.files.empty()) return "kubeconfig";
    if (cfg.files.size() == 1) return "kubeconfig " + cfg.files[0];
    std::string out = "kubeconfig ";
    for (size_t i = 0; i < cfg.files.size(); ++i) out += (i ? ":" : "") + cfg.files[i];
    return out;
}

// Servers are written with or without a scheme ("10.0.0.1:6443" means https, as client-go assumes with TLS).
Result<std::string> normalize_server(std::string server, const std::string& where) {
    if (server.find("://") == std::string::npos) server = "https://" + server;
    if (!server.starts_with("https://") && !server.starts_with("http://")) {
        return Error{fmt::format("{}: server {}: only https:// and http:// are supported", where, server)};
    }
    while (server.size() > 8 && server.back() == '/') server.pop_back();
    return server;
}

std::optional<Error> check_readable(const std::string& path, const std::string& where, const char* what) {
    auto text = read_text_file(path);
    if (!text) return Error{fmt::format("{}: {} {}", where, what, text.error().message)};
    return std::nullopt;
}

std::optional<Error> check_exec(const ExecConfig& exec, const std::string& where) {
    constexpr std::string_view kV1 = "client.authentication.k8s.io/v1";
    constexpr std::string_view kV1beta1 = "client.authentication.k8s.io/v1beta1";
    if (exec.command.empty()) return Error{where + ": exec: command is required"};
    if (exec.api_version.empty()) {
        return Error{fmt::format("{}: exec: apiVersion is required ({} or {})", where, kV1, kV1beta1)};
    }
    if (exec.api_version != kV1 && exec.api_version != kV1beta1) {
        return Error{fmt::format("{}: exec: apiVersion {} is not supported (use {} or {})", where, exec.api_version,
                                 kV1, kV1beta1)};
    }
    if (exec.api_version == kV1 && exec.interactive_mode.empty()) {
        return Error{fmt::format("{}: exec: interactiveMode must be specified for {} (Never, IfAvailable or Always)",
                                 where, exec.api_version)};
    }
    const auto& m = exec.interactive_mode;
    if (!m.empty() && m != "Never" && m != "IfAvailable" && m != "Always") {
        return Error{fmt::format("{}: exec: invalid interactiveMode \"{}\" (Never, IfAvailable or Always)", where, m)};
    }
    return std::nullopt;
}

}  // namespace

ConfigEnvironment ConfigEnvironment::from_process() {
    ConfigEnvironment env;
    env.kubeconfig = env_var("KUBECONFIG");
    env.home = env_var("HOME");
    env.service_host = env_var("KUBERNETES_SERVICE_HOST");
    env.service_port = env_var("KUBERNETES_SERVICE_PORT");
    return env;
}

std::string ClientConfig::describe() const {
    if (in_cluster) return fmt::format("in-cluster config ({})", server);
    return fmt::format("context \"{}\" ({})", context, server);
}

Result<ClientConfig> client_config_from_kubeconfig(const Kubeconfig& cfg, const std::string& context) {
    const std::string name = context.empty() ? cfg.current_context : context;
    if (name.empty()) {
        return Error{fmt::format("{}: no current-context is set; pass --context NAME (contexts: {})", files_phrase(cfg),
                                 join_names(cfg.contexts))};
    }
    const auto ctx_it = cfg.contexts.find(name);
    if (ctx_it == cfg.contexts.end()) {
        return Error{fmt::format("{}: context \"{}\" not found (contexts: {})", files_phrase(cfg), name,
                                 join_names(cfg.contexts))};
    }
    const KubeconfigContext& ctx = ctx_it->second;
    const std::string where = fmt::format("context \"{}\"", name);
    if (ctx.cluster.empty()) return Error{fmt::format("{} in {}: no cluster is set", where, ctx.source)};
    const auto cl_it = cfg.clusters.find(ctx.cluster);
    if (cl_it == cfg.clusters.end()) {
        return Error{fmt::format("{}: cluster \"{}\" not found in {}", where, ctx.cluster, files_phrase(cfg))};
    }
    const KubeconfigCluster& cluster = cl_it->second;
    if (cluster.server.empty()) return Error{fmt::format("{}: cluster \"{}\" has no server", where, ctx.cluster)};

    ClientConfig out;
    out.context = name;
    out.ns = ctx.ns.empty() ? "default" : ctx.ns;
    auto server = normalize_server(cluster.server, where);
    if (!server) return server.error();
    out.server = std::move(*server);
    const std::string cwhere = out.describe();

    if (cluster.insecure_skip_tls_verify &&
        (!cluster.certificate_authority.empty() || !cluster.certificate_authority_data.empty())) {
        return Error{
            fmt::format("{}: cluster \"{}\" sets both insecure-skip-tls-verify and a certificate authority; remove one",
                        cwhere, ctx.cluster)};
    }
    out.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
    out.tls_server_name = cluster.tls_server_name;
    out.proxy_url = cluster.proxy_url;
    if (!cluster.certificate_authority_data.empty()) {
        out.ca_pem = cluster.certificate_authority_data;  // data overrides the file, as in client-go
        out.ca_source = "certificate-authority-data";
    } else if (!cluster.certificate_authority.empty()) {
        auto pem = read_text_file(cluster.certificate_authority);
        if (!pem) return Error{fmt::format("{}: certificate-authority {}", cwhere, pem.error().message)};
        out.ca_pem = std::move(*pem);
        out.ca_source = cluster.certificate_authority;
    }

    if (ctx.user.empty()) return out;  // anonymous
    const auto user_it = cfg.users.find(ctx.user);
    if (user_it == cfg.users.end()) {
        return Error{fmt::format("{}: user \"{}\" not found in {}", cwhere, ctx.user, files_phrase(cfg))};
    }
    const KubeconfigUser& user = user_it->second;
    const std::string uwhere = fmt::format("{}: user \"{}\"", cwhere, ctx.user);
    const bool has_token = !user.token.empty() || !user.token_file.empty();
    const bool has_basic = !user.username.empty() || !user.password.empty();
    if (has_token && has_basic) {
        return Error{uwhere + ": more than one authentication method (token and basic auth); only one is allowed"};
    }
    if (!user.auth_provider.empty()) {
        if (user.exec) return Error{uwhere + ": auth-provider and exec may not both be specified"};
        return Error{
            fmt::format("{}: auth-provider \"{}\" is not supported (kubectl dropped auth providers in 1.26); "
                        "use the provider's "
                        "exec credential plugin instead (e.g. gke-gcloud-auth-plugin, kubelogin)",
                        uwhere, user.auth_provider)};
    }
    out.token = user.token;
    out.token_file = user.token_file;
    if (!out.token_file.empty()) {
        if (auto e = check_readable(out.token_file, uwhere, "tokenFile")) return *e;
    }
    out.username = user.username;
    out.password = user.password;
    out.impersonate = user.impersonate;
    out.impersonate_uid = user.impersonate_uid;
    out.impersonate_groups = user.impersonate_groups;

    const bool has_cert = !user.client_certificate_data.empty() || !user.client_certificate.empty();
    const bool has_key = !user.client_key_data.empty() || !user.client_key.empty();
    if (has_cert != has_key) {
        return Error{fmt::format("{}: {} is set without {}", uwhere, has_cert ? "client-certificate" : "client-key",
                                 has_cert ? "client-key" : "client-certificate")};
    }
    if (!user.client_certificate_data.empty()) {
        out.client_certificate_pem = user.client_certificate_data;
    } else if (!user.client_certificate.empty()) {
        out.client_certificate_file = user.client_certificate;
        if (auto e = check_readable(out.client_certificate_file, uwhere, "client-certificate")) return *e;
    }
    if (!user.client_key_data.empty()) {
        out.client_key_pem = user.client_key_data;
    } else if (!user.client_key.empty()) {
        out.client_key_file = user.client_key;
        if (auto e = check_readable(out.client_key_file, uwhere, "client-key")) return *e;
    }
    if (user.exec) {
        if (auto e = check_exec(*user.exec, uwhere)) return *e;
        out.exec = user.exec;
    }
    return out;
}

bool in_cluster_available(const ConfigEnvironment& env) {
    if (!env.service_host || env.service_host->empty() || !env.service_port || env.service_port->empty()) return false;
    struct stat st {};
    return ::stat((env.service_account_dir + "/token").c_str(), &st) == 0;
}

Result<ClientConfig> in_cluster_config(const ConfigEnvironment& env) {
    if (!env.service_host || env.service_host->empty() || !env.service_port || env.service_port->empty()) {
        return Error{
            "in-cluster config: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (not in a "
            "pod?)"};
    }
    ClientConfig out;
    out.in_cluster = true;
    const std::string& host = *env.service_host;
    out.server = host.find(':') != std::string::npos ? fmt::format("https://[{}]:{}", host, *env.service_port)
                                                     : fmt::format("https://{}:{}", host, *env.service_port);
    out.token_file = env.service_account_dir + "/token";
    if (auto e = check_readable(out.token_file, out.describe(), "service account token")) return *e;
    const std::string ca = env.service_account_dir + "/ca.crt";
    auto pem = read_text_file(ca);
    if (!pem) return Error{fmt::format("{}: service account CA {}", out.describe(), pem.error().message)};
    out.ca_pem = std::move(*pem);
    out.ca_source = ca;
    auto ns = read_text_file(env.service_account_dir + "/namespace");
    out.ns = ns ? std::string(trim(*ns)) : std::string();
    if (out.ns.empty()) out.ns = "default";
    return out;
}

Result<ClientConfig> load_client_config(const ClientOptions& options) {
    const ConfigEnvironment env = options.environment ? *options.environment : ConfigEnvironment::from_process();
    if (!options.kubeconfig.empty()) {
        auto cfg = load_kubeconfig_files({options.kubeconfig}, false);
        if (!cfg) return cfg.error();
        return client_config_from_kubeconfig(*cfg, options.context);
    }
    std::vector<std::string> paths;
    std::string looked;
    if (env.kubeconfig && !env.kubeconfig->empty()) {
        paths = split_kubeconfig_env(*env.kubeconfig);
        looked = "KUBECONFIG=" + *env.kubeconfig;
    } else if (env.home && !env.home->empty()) {
        paths.push_back(*env.home + "/.kube/config");
        looked = paths.back();
    }
    auto cfg = load_kubeconfig_files(paths, true);
    if (!cfg) return cfg.error();
    if (cfg->empty()) {
        if (options.context.empty() && in_cluster_available(env)) return in_cluster_config(env);
        return Error{
            fmt::format("no Kubernetes configuration: nothing in {} and not running in a pod; pass "
                        "--kubeconfig FILE or set "
                        "KUBECONFIG",
                        looked.empty() ? "~/.kube/config ($HOME is not set)" : looked)};
    }
    return client_config_from_kubeconfig(*cfg, options.context);
}

Result<ClientConfig> load_client_config(const std::string& kubeconfig, const std::string& context) {
    ClientOptions o;
    o.kubeconfig = kubeconfig;
    o.context = context;
    return load_client_config(o);
}

}  // namespace npt::k8s
