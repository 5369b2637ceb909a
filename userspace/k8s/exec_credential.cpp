#include "k8s/exec_credential.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <simdjson.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <vector>

#include "common/json_writer.hpp"
#include "common/base64.hpp"
#include "k8s/file_util.hpp"

extern char** environ;

namespace npt::k8s {

namespace {

constexpr size_t kMaxStdout = 1 << 20;
constexpr size_t kMaxStderr = 64 << 10;

std::string plugin_name(const ExecConfig& exec) {
    return fmt::format("exec plugin \"{}\"", exec.command);
}

// Messages are one line: a multi-line installHint is joined.
std::string one_line(std::string_view text) {
    std::string out;
    bool space = false;
    for (char ch : trim(text)) {
        if (ch == '\n' || ch == '\r' || ch == ' ' || ch == '\t') {
            space = true;
            continue;
        }
        if (space && !out.empty()) out += ' ';
        space = false;
        out += ch;
    }
    return out;
}

// The last non-empty line of a plugin's stderr, for a one-line error.
std::string last_line(std::string_view text) {
    text = trim(text);
    const auto nl = text.find_last_of('\n');
    std::string line(trim(nl == std::string_view::npos ? text : text.substr(nl + 1)));
    if (line.size() > 300) line = line.substr(0, 300) + "...";
    return line;
}

int parse_digits(std::string_view s, size_t pos, size_t n, bool& ok) {
    int v = 0;
    if (pos + n > s.size()) {
        ok = false;
        return 0;
    }
    for (size_t i = pos; i < pos + n; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            ok = false;
            return 0;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

struct Pipe {
    int fd[2] = {-1, -1};
    ~Pipe() {
        for (int f : fd)
            if (f >= 0) ::close(f);
    }
    void close_end(int i) {
        if (fd[i] >= 0) ::close(fd[i]);
        fd[i] = -1;
    }
};

}  // namespace

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
    using namespace std::chrono;
    bool ok = true;
    const int y = parse_digits(s, 0, 4, ok);
    const int mo = parse_digits(s, 5, 2, ok);
    const int d = parse_digits(s, 8, 2, ok);
    const int h = parse_digits(s, 11, 2, ok);
    const int mi = parse_digits(s, 14, 2, ok);
    const int se = parse_digits(s, 17, 2, ok);
    if (!ok || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || s[13] != ':' ||
        s[16] != ':') {
        return std::nullopt;
    }
    size_t pos = 19;
    nanoseconds frac{0};
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        int64_t scale = 100000000;
        const size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
            frac += nanoseconds((s[pos] - '0') * scale);
            scale /= 10;
            ++pos;
        }
        if (pos == start) return std::nullopt;
    }
    seconds offset{0};
    if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
        ++pos;
    } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
        const int sign = s[pos] == '-' ? -1 : 1;
        const int oh = parse_digits(s, pos + 1, 2, ok);
        const int om = parse_digits(s, pos + 4, 2, ok);
        if (!ok || pos + 3 >= s.size() || s[pos + 3] != ':') return std::nullopt;
        offset = seconds(sign * (oh * 3600 + om * 60));
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size()) return std::nullopt;
    const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)), day(static_cast<unsigned>(d))};
    if (!ymd.ok() || h > 23 || mi > 59 || se > 60) return std::nullopt;
    const auto tp = sys_days(ymd) + hours(h) + minutes(mi) + seconds(se) + frac - offset;
    return time_point_cast<system_clock::duration>(tp);
}

std::string exec_info_json(const ExecConfig& exec, const ExecClusterInfo& cluster) {
    std::string out;
    JsonWriter w(out);
    w.begin_object();
    w.member("apiVersion", exec.api_version);
    w.member("kind", "ExecCredential");
    w.key("spec");
    w.begin_object();
    if (exec.provide_cluster_info) {
        w.key("cluster");
        w.begin_object();
        w.member("server", cluster.server);
        if (!cluster.tls_server_name.empty()) w.member("tls-server-name", cluster.tls_server_name);
        if (cluster.insecure_skip_tls_verify) w.member("insecure-skip-tls-verify", true);
        if (!cluster.ca_pem.empty()) w.member("certificate-authority-data", base64_encode(cluster.ca_pem));
        if (!cluster.proxy_url.empty()) w.member("proxy-url", cluster.proxy_url);
        w.end_object();
    }
    w.member("interactive", false);
    w.end_object();
    w.end_object();
    return out;
}

Result<ExecCredential> parse_exec_credential(std::string_view json, const ExecConfig& exec) {
    const std::string who = plugin_name(exec);
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    if (auto err = parser.parse(json.data(), json.size()).get(root)) {
        return Error{fmt::format("{}: output is not JSON ({})", who, simdjson::error_message(err))};
    }
    std::string_view api_version, kind;
    if (root["apiVersion"].get(api_version) || api_version != exec.api_version) {
        return Error{fmt::format("{}: plugin returned apiVersion \"{}\", the kubeconfig expects \"{}\"", who,
                                 api_version, exec.api_version)};
    }
    if (root["kind"].get(kind) || kind != "ExecCredential") {
        return Error{fmt::format("{}: plugin returned kind \"{}\", expected ExecCredential", who, kind)};
    }
    simdjson::dom::object status;
    if (root["status"].get(status)) return Error{who + ": plugin returned no status"};
    ExecCredential cred;
    std::string_view v;
    if (!status["token"].get(v)) cred.token = v;
    if (!status["clientCertificateData"].get(v)) cred.client_certificate_pem = v;
    if (!status["clientKeyData"].get(v)) cred.client_key_pem = v;
    if (cred.client_certificate_pem.empty() != cred.client_key_pem.empty()) {
        return Error{who + ": plugin returned only one of clientCertificateData and clientKeyData"};
    }
    if (cred.token.empty() && cred.client_certificate_pem.empty()) {
        return Error{who + ": plugin returned neither a token nor a client certificate and key"};
    }
    if (!status["expirationTimestamp"].get(v) && !v.empty()) {
        cred.expiration = parse_rfc3339(v);
        if (!cred.expiration) return Error{fmt::format("{}: invalid expirationTimestamp \"{}\"", who, v)};
    }
    return cred;
}

Result<ExecCredential> run_exec_plugin(const ExecConfig& exec, const ExecClusterInfo& cluster,
                                       std::chrono::milliseconds timeout) {
    const std::string who = plugin_name(exec);
    if (exec.interactive_mode == "Always") {
        return Error{who +
                     ": the plugin needs an interactive terminal (interactiveMode: Always), which netpol-trace "
                     "cannot give it; log in with kubectl first or use a non-interactive credential"};
    }

    std::vector<std::string> args{exec.command};
    args.insert(args.end(), exec.args.begin(), exec.args.end());
    std::vector<std::string> env;
    auto overridden = [&](std::string_view entry) {
        const auto eq = entry.find('=');
        const std::string_view name = entry.substr(0, eq);
        if (name == "KUBERNETES_EXEC_INFO") return true;
        for (const auto& e : exec.env)
            if (e.name == name) return true;
        return false;
    };
    for (char** e = environ; e && *e; ++e)
        if (!overridden(*e)) env.emplace_back(*e);
    for (const auto& e : exec.env) env.push_back(e.name + "=" + e.value);
    env.push_back("KUBERNETES_EXEC_INFO=" + exec_info_json(exec, cluster));
    std::vector<char*> argv, envp;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);

    Pipe out, err;
    if (::pipe2(out.fd, O_CLOEXEC) != 0 || ::pipe2(err.fd, O_CLOEXEC) != 0) {
        return Error{fmt::format("{}: pipe: {}", who, std::strerror(errno))};
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, out.fd[1], 1);
    posix_spawn_file_actions_adddup2(&actions, err.fd[1], 2);
    pid_t pid = -1;
    const int rc = ::posix_spawnp(&pid, exec.command.c_str(), &actions, nullptr, argv.data(), envp.data());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        std::string msg = fmt::format("{}: cannot run: {}", who, std::strerror(rc));
        if (rc == ENOENT && !exec.install_hint.empty()) msg += "; " + one_line(exec.install_hint);
        return Error{msg};
    }
    out.close_end(1);
    err.close_end(1);

    std::string stdout_text, stderr_text;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    bool timed_out = false;
    std::array<char, 8192> buf;
    while (out.fd[0] >= 0 || err.fd[0] >= 0) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            break;
        }
        pollfd fds[2] = {{out.fd[0], POLLIN, 0}, {err.fd[0], POLLIN, 0}};
        const int n = ::poll(fds, 2, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2; ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            const ssize_t got = ::read(fds[i].fd, buf.data(), buf.size());
            if (got <= 0) {
                (i == 0 ? out : err).close_end(0);
                continue;
            }
            std::string& dst = i == 0 ? stdout_text : stderr_text;
            if (dst.size() < (i == 0 ? kMaxStdout : kMaxStderr)) dst.append(buf.data(), static_cast<size_t>(got));
        }
    }
    if (timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out) return Error{fmt::format("{}: did not finish within {} s", who, timeout.count() / 1000)};
    if (WIFSIGNALED(status)) return Error{fmt::format("{}: killed by signal {}", who, WTERMSIG(status))};
    if (WEXITSTATUS(status) != 0) {
        std::string msg = fmt::format("{}: exited with status {}", who, WEXITSTATUS(status));
        if (const auto line = last_line(stderr_text); !line.empty()) msg += ": " + line;
        // 127 is the shell's "command not found" for wrapper scripts.
        if (WEXITSTATUS(status) == 127 && !exec.install_hint.empty()) msg += "; " + one_line(exec.install_hint);
        return Error{msg};
    }
    return parse_exec_credential(stdout_text, exec);
}

}  // namespace npt::k8s
