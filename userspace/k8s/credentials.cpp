#include "k8s/credentials.hpp"

#include <fmt/format.h>

namespace npt::k8s {

namespace {

// An exec credential is renewed a little before it expires, so a request never carries one that expires
// on the way.
constexpr auto kExpirySkew = std::chrono::seconds(5);

}  // namespace

Credentials::Credentials(const ClientConfig& config, std::chrono::milliseconds exec_timeout)
    : config_(config), exec_timeout_(exec_timeout) {}

Result<bool> Credentials::refresh_file(const std::string& path, FileStamp& stamp, std::string& content) {
    const FileStamp now = stamp_file(path);
    if (now.size >= 0 && now == stamp && !content.empty()) return false;
    auto text = read_text_file(path);
    if (!text) {
        // A rotation in progress: keep what worked until the new file is readable.
        if (content.empty()) return text.error();
        return false;
    }
    std::string fresh(trim(*text));
    stamp = now;
    if (fresh == content) return false;
    content = std::move(fresh);
    return true;
}

Result<std::shared_ptr<const AuthMaterial>> Credentials::current() {
    std::lock_guard lock(mu_);
    bool changed = !material_;
    struct FileSlot {
        const std::string& path;
        FileStamp& stamp;
        std::string& content;
    };
    for (const FileSlot& f : {FileSlot{config_.token_file, token_stamp_, file_token_},
                              FileSlot{config_.client_certificate_file, cert_stamp_, file_cert_},
                              FileSlot{config_.client_key_file, key_stamp_, file_key_}}) {
        if (f.path.empty()) continue;
        auto refreshed = refresh_file(f.path, f.stamp, f.content);
        if (!refreshed) return refreshed.error();
        changed |= *refreshed;
    }
    if (config_.exec) {
        const bool expired =
            exec_ && exec_->expiration && std::chrono::system_clock::now() + kExpirySkew >= *exec_->expiration;
        if (!exec_ || expired || exec_rejected_) {
            ExecClusterInfo info{config_.server, config_.tls_server_name, config_.insecure_skip_tls_verify,
                                 config_.ca_pem, config_.proxy_url};
            ++exec_runs_;
            auto cred = run_exec_plugin(*config_.exec, info, exec_timeout_);
            if (!cred) return cred.error();
            exec_ = std::move(*cred);
            exec_rejected_ = false;
            changed = true;
        }
    }
    if (!changed) return material_;

    auto m = std::make_shared<AuthMaterial>();
    // A token in the kubeconfig (or its file) goes first; the plugin's token is used when there is none.
    if (!file_token_.empty()) {
        m->bearer_token = file_token_;
    } else if (!config_.token.empty()) {
        m->bearer_token = config_.token;
    } else if (exec_) {
        m->bearer_token = exec_->token;
    }
    if (exec_ && !exec_->client_certificate_pem.empty()) {
        m->client_certificate_pem = exec_->client_certificate_pem;
        m->client_key_pem = exec_->client_key_pem;
    } else {
        m->client_certificate_pem =
            config_.client_certificate_file.empty() ? config_.client_certificate_pem : file_cert_;
        m->client_key_pem = config_.client_key_file.empty() ? config_.client_key_pem : file_key_;
    }
    m->username = config_.username;
    m->password = config_.password;
    m->generation = ++generation_;
    material_ = std::move(m);
    return material_;
}

bool Credentials::reject(uint64_t generation) {
    std::lock_guard lock(mu_);
    if (!material_ || material_->generation != generation) return true;  // already renewed since
    if (config_.exec && config_.token.empty() && config_.token_file.empty()) {
        exec_rejected_ = true;
        return true;
    }
    if (!config_.token_file.empty()) {
        // The kubelet may have rotated the token since we last looked: re-read it now.
        token_stamp_ = FileStamp{};
        const auto changed = refresh_file(config_.token_file, token_stamp_, file_token_);
        return changed && *changed;  // an unreadable file: nothing new to retry with
    }
    return false;
}

std::string Credentials::rejection_hint() const {
    if (config_.in_cluster) {
        return "the service account token was rejected; check that the pod's service account exists and its "
               "token "
               "is mounted";
    }
    if (!config_.token.empty() || !config_.token_file.empty()) {
        return "the token was rejected; refresh your credentials (kubectl auth whoami)";
    }
    if (config_.exec) {
        return fmt::format("the credentials from exec plugin \"{}\" were rejected; log in again (kubectl auth whoami)",
                           config_.exec->command);
    }
    if (!config_.client_certificate_pem.empty() || !config_.client_certificate_file.empty()) {
        return "the client certificate was rejected (expired, or signed by a CA the server does not trust); "
               "refresh your credentials (kubectl auth whoami)";
    }
    if (!config_.username.empty()) return "the username and password were rejected";
    return "no credentials were sent: the context's user has no token, client certificate or exec plugin";
}

uint64_t Credentials::exec_runs() const {
    std::lock_guard lock(mu_);
    return exec_runs_;
}

}  // namespace npt::k8s
