#include "k8s/kubeconfig.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <utility>

#include "common/base64.hpp"
#include "k8s/file_util.hpp"

namespace npt::k8s {

namespace {

// yaml-cpp reports misuse by throwing; the parser below checks types first and turns anything left into a
// one-line error naming the file and the field.
struct ParseError {
    std::string message;
};

std::string type_name(const YAML::Node& n) {
    switch (n.Type()) {
        case YAML::NodeType::Map:
            return "a map";
        case YAML::NodeType::Sequence:
            return "a list";
        case YAML::NodeType::Scalar:
            return "a scalar";
        case YAML::NodeType::Null:
            return "null";
        default:
            return "nothing";
    }
}

class Reader {
  public:
    Reader(std::string_view file, std::string base_dir) : file_(file), base_dir_(std::move(base_dir)) {}

    [[noreturn]] void fail(const std::string& where, std::string_view what) const {
        throw ParseError{fmt::format("kubeconfig {}: {}: {}", file_, where, what)};
    }

    // A map field; absent or null reads as absent.
    bool map(const YAML::Node& n, const std::string& where) const {
        if (!n || n.IsNull()) return false;
        if (!n.IsMap()) fail(where, "expected a map, got " + type_name(n));
        return true;
    }
    bool list(const YAML::Node& n, const std::string& where) const {
        if (!n || n.IsNull()) return false;
        if (!n.IsSequence()) fail(where, "expected a list, got " + type_name(n));
        return true;
    }
    void str(const YAML::Node& parent, const char* key, const std::string& where, std::string& out) const {
        const YAML::Node n = parent[key];
        if (!n || n.IsNull()) return;
        if (!n.IsScalar()) fail(where + "." + key, "expected a string, got " + type_name(n));
        out = n.Scalar();
    }
    void boolean(const YAML::Node& parent, const char* key, const std::string& where, bool& out) const {
        const YAML::Node n = parent[key];
        if (!n || n.IsNull()) return;
        bool v = false;
        if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
            fail(where + "." + key,
                 fmt::format("expected true or false, got {}", n.IsScalar() ? "\"" + n.Scalar() + "\"" : type_name(n)));
        }
        out = v;
    }
    void path(const YAML::Node& parent, const char* key, const std::string& where, std::string& out) const {
        str(parent, key, where, out);
        if (!out.empty()) out = absolute_path(out, base_dir_);
    }
    void data(const YAML::Node& parent, const char* key, const std::string& where, std::string& out) const {
        std::string text;
        str(parent, key, where, text);
        if (text.empty()) return;
        auto decoded = base64_decode(text);
        if (!decoded) fail(where + "." + key, "invalid base64");
        out = std::move(*decoded);
    }
    const std::string& base_dir() const { return base_dir_; }

  private:
    std::string_view file_;
    std::string base_dir_;
};

// f(name, body, where) for each `- name: X\n  <body_key>: {...}` entry of a named list.
template <typename F>
void each_named(const Reader& r, const YAML::Node& root, const char* list_key, const char* body_key, F&& f) {
    const YAML::Node list = root[list_key];
    if (!r.list(list, list_key)) return;
    for (size_t i = 0; i < list.size(); ++i) {
        const YAML::Node item = list[i];
        const std::string where = fmt::format("{}[{}]", list_key, i);
        if (!r.map(item, where)) continue;
        std::string name;
        r.str(item, "name", where, name);
        if (name.empty()) r.fail(where + ".name", "required");
        const YAML::Node body = item[body_key];
        const std::string body_where = fmt::format("{}.{}", where, body_key);
        if (!r.map(body, body_where)) {
            f(name, YAML::Node(YAML::NodeType::Map), body_where);
        } else {
            f(name, body, body_where);
        }
    }
}

ExecConfig read_exec(const Reader& r, const YAML::Node& n, const std::string& where) {
    ExecConfig e;
    r.str(n, "apiVersion", where, e.api_version);
    r.str(n, "command", where, e.command);
    if (e.command.find('/') != std::string::npos) e.command = absolute_path(e.command, r.base_dir());
    const YAML::Node args = n["args"];
    if (r.list(args, where + ".args")) {
        for (size_t i = 0; i < args.size(); ++i) {
            if (!args[i].IsScalar()) r.fail(fmt::format("{}.args[{}]", where, i), "expected a string");
            e.args.push_back(args[i].Scalar());
        }
    }
    const YAML::Node env = n["env"];
    if (r.list(env, where + ".env")) {
        for (size_t i = 0; i < env.size(); ++i) {
            const std::string ew = fmt::format("{}.env[{}]", where, i);
            if (!r.map(env[i], ew)) continue;
            ExecEnvVar v;
            r.str(env[i], "name", ew, v.name);
            r.str(env[i], "value", ew, v.value);
            if (v.name.empty()) r.fail(ew + ".name", "required");
            e.env.push_back(std::move(v));
        }
    }
    r.str(n, "installHint", where, e.install_hint);
    r.boolean(n, "provideClusterInfo", where, e.provide_cluster_info);
    r.str(n, "interactiveMode", where, e.interactive_mode);
    return e;
}

Kubeconfig read_config(const Reader& r, const YAML::Node& root, const std::string& file) {
    Kubeconfig cfg;
    cfg.files.push_back(file);
    if (!root || root.IsNull()) return cfg;
    if (!root.IsMap()) r.fail("top level", "expected a map, got " + type_name(root));
    r.str(root, "current-context", "top level", cfg.current_context);
    each_named(r, root, "clusters", "cluster", [&](const std::string& name, const YAML::Node& c, const std::string& w) {
        KubeconfigCluster cl;
        cl.source = file;
        r.str(c, "server", w, cl.server);
        r.path(c, "certificate-authority", w, cl.certificate_authority);
        r.data(c, "certificate-authority-data", w, cl.certificate_authority_data);
        r.boolean(c, "insecure-skip-tls-verify", w, cl.insecure_skip_tls_verify);
        r.str(c, "tls-server-name", w, cl.tls_server_name);
        r.str(c, "proxy-url", w, cl.proxy_url);
        cfg.clusters.insert_or_assign(name, std::move(cl));
    });
    each_named(r, root, "users", "user", [&](const std::string& name, const YAML::Node& u, const std::string& w) {
        KubeconfigUser us;
        us.source = file;
        r.str(u, "token", w, us.token);
        r.path(u, "tokenFile", w, us.token_file);
        r.path(u, "client-certificate", w, us.client_certificate);
        r.data(u, "client-certificate-data", w, us.client_certificate_data);
        r.path(u, "client-key", w, us.client_key);
        r.data(u, "client-key-data", w, us.client_key_data);
        r.str(u, "username", w, us.username);
        r.str(u, "password", w, us.password);
        r.str(u, "as", w, us.impersonate);
        r.str(u, "as-uid", w, us.impersonate_uid);
        const YAML::Node groups = u["as-groups"];
        if (r.list(groups, w + ".as-groups")) {
            for (size_t i = 0; i < groups.size(); ++i) {
                if (!groups[i].IsScalar()) r.fail(fmt::format("{}.as-groups[{}]", w, i), "expected a string");
                us.impersonate_groups.push_back(groups[i].Scalar());
            }
        }
        const YAML::Node exec = u["exec"];
        if (r.map(exec, w + ".exec")) us.exec = read_exec(r, exec, w + ".exec");
        const YAML::Node provider = u["auth-provider"];
        if (r.map(provider, w + ".auth-provider")) {
            r.str(provider, "name", w + ".auth-provider", us.auth_provider);
            if (us.auth_provider.empty()) us.auth_provider = "(unnamed)";
        }
        cfg.users.insert_or_assign(name, std::move(us));
    });
    each_named(r, root, "contexts", "context", [&](const std::string& name, const YAML::Node& c, const std::string& w) {
        KubeconfigContext ctx;
        ctx.source = file;
        r.str(c, "cluster", w, ctx.cluster);
        r.str(c, "user", w, ctx.user);
        r.str(c, "namespace", w, ctx.ns);
        cfg.contexts.insert_or_assign(name, std::move(ctx));
    });
    return cfg;
}

}  // namespace

Result<Kubeconfig> parse_kubeconfig(std::string_view text, std::string_view path) {
    const std::string file = absolute_path(path);
    Reader r(path, parent_dir(file));
    try {
        const YAML::Node root = YAML::Load(std::string(text));
        return read_config(r, root, std::string(path));
    } catch (const ParseError& e) {
        return Error{e.message};
    } catch (const YAML::ParserException& e) {
        return Error{
            fmt::format("kubeconfig {}: line {}, column {}: {}", path, e.mark.line + 1, e.mark.column + 1, e.msg)};
    } catch (const std::exception& e) {
        return Error{fmt::format("kubeconfig {}: {}", path, e.what())};
    }
}

void merge_kubeconfig(Kubeconfig& first, Kubeconfig later) {
    for (auto& [k, v] : later.clusters) first.clusters.try_emplace(k, std::move(v));
    for (auto& [k, v] : later.users) first.users.try_emplace(k, std::move(v));
    for (auto& [k, v] : later.contexts) first.contexts.try_emplace(k, std::move(v));
    if (first.current_context.empty()) first.current_context = std::move(later.current_context);
    for (auto& f : later.files) first.files.push_back(std::move(f));
}

Result<Kubeconfig> load_kubeconfig_files(const std::vector<std::string>& paths, bool missing_ok) {
    Kubeconfig merged;
    for (const auto& path : paths) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            if (missing_ok && errno == ENOENT) continue;
            return Error{fmt::format("kubeconfig {}: cannot read: {}", path, std::strerror(errno))};
        }
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto cfg = parse_kubeconfig(text, path);
        if (!cfg) return cfg.error();
        merge_kubeconfig(merged, std::move(*cfg));
    }
    return merged;
}

std::vector<std::string> split_kubeconfig_env(std::string_view value) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= value.size()) {
        size_t end = value.find(':', start);
        if (end == std::string_view::npos) end = value.size();
        std::string part(value.substr(start, end - start));
        if (!part.empty() && std::find(out.begin(), out.end(), part) == out.end()) out.push_back(std::move(part));
        start = end + 1;
    }
    return out;
}

}  // namespace npt::k8s
