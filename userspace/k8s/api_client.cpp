#include "k8s/api_client.hpp"

#include <curl/curl.h>
#include <fmt/format.h>
#include <simdjson.h>

#include <cstring>
#include <utility>

#include "common/ip_addr.hpp"
#include "k8s/file_util.hpp"

namespace npt::k8s {

namespace {

constexpr size_t kMaxBody = size_t{1} << 30;       // a list page is a few MB; this only stops runaway servers
constexpr size_t kMaxErrorBody = size_t{1} << 20;  // a non-2xx body on a stream

void ensure_curl_initialized() {
    // The one process-wide initialization libcurl requires, done once before the first handle.
    static const bool initialized = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
    (void)initialized;
}

const char* reason_phrase(long status) {
    switch (status) {
        case 400:
            return "Bad Request";
        case 401:
            return "Unauthorized";
        case 403:
            return "Forbidden";
        case 404:
            return "Not Found";
        case 405:
            return "Method Not Allowed";
        case 409:
            return "Conflict";
        case 410:
            return "Gone";
        case 422:
            return "Unprocessable Entity";
        case 429:
            return "Too Many Requests";
        case 500:
            return "Internal Server Error";
        case 502:
            return "Bad Gateway";
        case 503:
            return "Service Unavailable";
        case 504:
            return "Gateway Timeout";
        default:
            return "";
    }
}

// The message of a metav1.Status body, else the body's first line; one line, bounded.
std::string status_message(std::string_view body) {
    std::string msg;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    std::string_view m;
    if (!parser.parse(body.data(), body.size()).get(root) && !root["message"].get(m)) {
        msg = m;
    } else {
        const auto nl = body.find('\n');
        msg = trim(body.substr(0, nl));
    }
    for (char& c : msg)
        if (c == '\n' || c == '\r') c = ' ';
    if (msg.size() > 400) msg = msg.substr(0, 400) + "...";
    return msg;
}

struct ServerParts {
    std::string scheme, host, port, prefix;
    bool ok = false;
};

ServerParts split_server(const std::string& server) {
    ServerParts p;
    const auto sep = server.find("://");
    if (sep == std::string::npos) return p;
    p.scheme = server.substr(0, sep);
    std::string rest = server.substr(sep + 3);
    const auto slash = rest.find('/');
    if (slash != std::string::npos) {
        p.prefix = rest.substr(slash);
        rest.resize(slash);
    }
    if (!rest.empty() && rest[0] == '[') {
        const auto close = rest.find(']');
        if (close == std::string::npos) return p;
        p.host = rest.substr(1, close - 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':') return p;
            p.port = rest.substr(close + 2);
        }
    } else {
        const auto colon = rest.rfind(':');
        p.host = rest.substr(0, colon);
        if (colon != std::string::npos) p.port = rest.substr(colon + 1);
    }
    if (p.port.empty()) p.port = p.scheme == "https" ? "443" : "80";
    while (!p.prefix.empty() && p.prefix.back() == '/') p.prefix.pop_back();
    p.ok = !p.host.empty() && (p.scheme == "https" || p.scheme == "http");
    return p;
}

struct SlistDeleter {
    void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

void add_header(Slist& list, const std::string& h) {
    list.reset(curl_slist_append(list.release(), h.c_str()));
}

}  // namespace

struct ApiClient::Handle {
    CURL* easy = nullptr;
    CURLM* multi = nullptr;  // owns the connection cache, so keep-alive survives between requests
};

// The state of one transfer, seen by libcurl's write callback.
struct ApiClient::Transfer {
    CURL* easy = nullptr;
    const LineHandler* on_line = nullptr;
    long status = 0;
    std::string body;      // whole body (no on_line) or a non-2xx body
    std::string pending;   // stream bytes not yet forming a complete line
    bool stopped = false;  // on_line asked to stop
    bool too_large = false;
    std::string handler_error;

    static size_t write(char* data, size_t size, size_t n, void* user) {
        auto* t = static_cast<Transfer*>(user);
        const size_t len = size * n;
        if (t->status == 0) curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &t->status);
        const bool stream = t->on_line && t->status >= 200 && t->status < 300;
        if (!stream) {
            const size_t cap = t->on_line ? kMaxErrorBody : kMaxBody;
            if (t->body.size() + len > cap) {
                t->too_large = true;
                return 0;
            }
            t->body.append(data, len);
            return len;
        }
        t->pending.append(data, len);
        size_t start = 0;
        try {
            for (;;) {
                const auto nl = t->pending.find('\n', start);
                if (nl == std::string::npos) break;
                std::string_view line(t->pending.data() + start, nl - start);
                start = nl + 1;
                if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
                if (line.empty()) continue;
                if (!(*t->on_line)(line)) {
                    t->stopped = true;
                    return 0;
                }
            }
        } catch (const std::exception& e) {
            t->handler_error = e.what();
            t->stopped = true;
            return 0;
        }
        t->pending.erase(0, start);
        if (t->pending.size() > kMaxBody) {
            t->too_large = true;
            return 0;
        }
        return len;
    }
};

ApiClient::ApiClient(ClientConfig config, ApiClientOptions options)
    : config_(std::move(config)), options_(std::move(options)), credentials_(config_, options_.exec_timeout) {
    ensure_curl_initialized();
    const ServerParts p = split_server(config_.server);
    if (!p.ok) {
        config_error_ = fmt::format("invalid server URL \"{}\"", config_.server);
        return;
    }
    if (!config_.tls_server_name.empty() && config_.tls_server_name != p.host && p.scheme == "https") {
        // libcurl takes the TLS name (SNI and verification) from the URL: address the request to the
        // tls-server-name and connect it to the real host, keeping the Host header the server expects.
        url_base_ =
            fmt::format("{}://{}:{}{}", p.scheme, IpAddr::bracket_host(config_.tls_server_name), p.port, p.prefix);
        connect_to_ = fmt::format("{}:{}:{}:{}", IpAddr::bracket_host(config_.tls_server_name), p.port,
                                  IpAddr::bracket_host(p.host), p.port);
        host_header_ = fmt::format("Host: {}:{}", IpAddr::bracket_host(p.host), p.port);
    } else {
        url_base_ = fmt::format("{}://{}:{}{}", p.scheme, IpAddr::bracket_host(p.host), p.port, p.prefix);
    }
}

ApiClient::~ApiClient() {
    for (Handle* h : pool_) {
        curl_easy_cleanup(h->easy);
        curl_multi_cleanup(h->multi);
        delete h;
    }
}

ApiClient::Handle* ApiClient::acquire() {
    {
        std::lock_guard lock(pool_mu_);
        if (!pool_.empty()) {
            Handle* h = pool_.back();
            pool_.pop_back();
            return h;
        }
    }
    auto* h = new Handle;
    h->easy = curl_easy_init();
    h->multi = curl_multi_init();
    return h;
}

void ApiClient::release(Handle* h) {
    std::lock_guard lock(pool_mu_);
    pool_.push_back(h);
}

HttpResponse ApiClient::get(std::string_view path, const Cancellation* cancel) {
    return perform("GET", path, {}, {}, nullptr, cancel, options_.request_timeout);
}

HttpResponse ApiClient::request(std::string_view method, std::string_view path, std::string_view body,
                                std::string_view content_type, const Cancellation* cancel) {
    return perform(method, path, body, content_type, nullptr, cancel, options_.request_timeout);
}

HttpResponse ApiClient::stream_lines(std::string_view path, const LineHandler& on_line, const Cancellation* cancel,
                                     std::chrono::milliseconds max_duration) {
    return perform("GET", path, {}, {}, &on_line, cancel, max_duration);
}

HttpResponse ApiClient::perform(std::string_view method, std::string_view path, std::string_view body,
                                std::string_view content_type, const LineHandler* on_line, const Cancellation* cancel,
                                std::chrono::milliseconds timeout) {
    if (!config_error_.empty()) {
        HttpResponse r;
        r.error = config_error_;
        r.retryable = false;
        return r;
    }
    for (int attempt = 0;; ++attempt) {
        auto auth = credentials_.current();
        if (!auth) {
            // An exec plugin that fails or a token file that cannot be read: the user has to act (the
            // reflectors still retry, but wait_synced need not wait for it).
            HttpResponse r;
            r.error = auth.error().message;
            r.retryable = false;
            return r;
        }
        Handle* h = acquire();
        HttpResponse r = perform_once(*h, **auth, method, path, body, content_type, on_line, cancel, timeout);
        release(h);
        // A 401 may mean an expired or rotated credential: renew it once and retry.
        if (r.status == 401 && attempt == 0 && credentials_.reject((*auth)->generation)) continue;
        return r;
    }
}

HttpResponse ApiClient::perform_once(Handle& h, const AuthMaterial& auth, std::string_view method,
                                     std::string_view path, std::string_view body, std::string_view content_type,
                                     const LineHandler* on_line, const Cancellation* cancel,
                                     std::chrono::milliseconds timeout) {
    HttpResponse r;
    CURL* c = h.easy;
    curl_easy_reset(c);
    char errbuf[CURL_ERROR_SIZE] = {0};
    const std::string url = url_base_ + std::string(path);
    Transfer t;
    t.easy = c;
    t.on_line = on_line;

    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Transfer::write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip: the API server compresses large lists
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    // A watch may be silent for minutes; keepalive notices a peer that vanished without a FIN.
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 30L);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 10L);
    Slist connect_to;  // libcurl reads it during the transfer
    if (!connect_to_.empty()) {
        add_header(connect_to, connect_to_);
        curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to.get());
    }

    // TLS
    if (config_.insecure_skip_tls_verify) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    } else if (!config_.ca_pem.empty()) {
        // Only the kubeconfig's CA, as client-go does: not the system roots as well.
        curl_blob ca{const_cast<char*>(config_.ca_pem.data()), config_.ca_pem.size(), CURL_BLOB_NOCOPY};
        curl_easy_setopt(c, CURLOPT_CAINFO_BLOB, &ca);
        curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);
    }
    if (!auth.client_certificate_pem.empty()) {
        curl_blob cert{const_cast<char*>(auth.client_certificate_pem.data()), auth.client_certificate_pem.size(),
                       CURL_BLOB_NOCOPY};
        curl_blob key{const_cast<char*>(auth.client_key_pem.data()), auth.client_key_pem.size(), CURL_BLOB_NOCOPY};
        curl_easy_setopt(c, CURLOPT_SSLCERT_BLOB, &cert);
        curl_easy_setopt(c, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(c, CURLOPT_SSLKEY_BLOB, &key);
        curl_easy_setopt(c, CURLOPT_SSLKEYTYPE, "PEM");
    }
    if (!config_.proxy_url.empty()) curl_easy_setopt(c, CURLOPT_PROXY, config_.proxy_url.c_str());
    if (!auth.username.empty() || !auth.password.empty()) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BASIC));
        curl_easy_setopt(c, CURLOPT_USERNAME, auth.username.c_str());
        curl_easy_setopt(c, CURLOPT_PASSWORD, auth.password.c_str());
    }

    Slist headers;
    add_header(headers, "Accept: application/json");
    if (!auth.bearer_token.empty()) add_header(headers, "Authorization: Bearer " + auth.bearer_token);
    if (!host_header_.empty()) add_header(headers, host_header_);
    if (!config_.impersonate.empty()) add_header(headers, "Impersonate-User: " + config_.impersonate);
    if (!config_.impersonate_uid.empty()) add_header(headers, "Impersonate-Uid: " + config_.impersonate_uid);
    for (const auto& g : config_.impersonate_groups) add_header(headers, "Impersonate-Group: " + g);
    if (method != "GET") {
        if (method == "POST") {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
        } else {
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, std::string(method).c_str());
        }
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
        if (!content_type.empty()) add_header(headers, "Content-Type: " + std::string(content_type));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());

    // Run it on the handle's multi, so another thread can wake the wait (Cancellation::cancel).
    curl_multi_add_handle(h.multi, c);
    if (cancel) cancel->attach(h.multi);
    CURLcode result = CURLE_OK;
    bool cancelled = false;
    for (;;) {
        int running = 0;
        if (curl_multi_perform(h.multi, &running) != CURLM_OK) {
            result = CURLE_FAILED_INIT;
            break;
        }
        if (running == 0) {
            int left = 0;
            while (CURLMsg* msg = curl_multi_info_read(h.multi, &left)) {
                if (msg->msg == CURLMSG_DONE && msg->easy_handle == c) result = msg->data.result;
            }
            break;
        }
        if (cancel && cancel->cancelled()) {
            cancelled = true;
            break;
        }
        curl_multi_poll(h.multi, nullptr, 0, 1000, nullptr);
    }
    if (cancel) cancel->detach(h.multi);
    curl_multi_remove_handle(h.multi, c);
    curl_easy_setopt(c, CURLOPT_CONNECT_TO, nullptr);

    long os_errno = 0;
    curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);

    if (cancelled || (cancel && cancel->cancelled() && result != CURLE_OK && !t.stopped)) {
        r.cancelled = true;
        r.error = "cancelled";
        return r;
    }
    if (t.stopped && t.handler_error.empty()) {
        r.status = status;
        return r;
    }
    if (!t.handler_error.empty()) {
        r.error = "processing the response failed: " + t.handler_error;
        return r;
    }
    if (result == CURLE_OK) {
        r.status = status;
        r.body = std::move(t.body);
        return r;
    }
    if (t.too_large) {
        r.error = "the response is too large";
        return r;
    }
    std::string detail = errbuf[0] ? errbuf : curl_easy_strerror(result);
    // A server that refuses a client certificate ends the handshake with an alert, which libcurl may only see
    // on the first read (TLS 1.3).
    if (!auth.client_certificate_pem.empty() && detail.find("alert") != std::string::npos &&
        (detail.find("unknown ca") != std::string::npos || detail.find("bad certificate") != std::string::npos ||
         detail.find("certificate expired") != std::string::npos ||
         detail.find("certificate revoked") != std::string::npos ||
         detail.find("certificate unknown") != std::string::npos)) {
        r.error = "the server rejected the client certificate (" + detail +
                  "); refresh your credentials (kubectl auth whoami)";
        r.retryable = false;
        return r;
    }
    switch (result) {
        case CURLE_COULDNT_CONNECT:
            r.error = "cannot connect: " + std::string(os_errno ? std::strerror(static_cast<int>(os_errno)) : detail);
            break;
        case CURLE_COULDNT_RESOLVE_HOST:
            r.error = "cannot resolve the server's host name: " + detail;
            break;
        case CURLE_COULDNT_RESOLVE_PROXY:
            r.error = "cannot resolve the proxy's host name: " + detail;
            break;
        case CURLE_OPERATION_TIMEDOUT:
            r.error = "timed out: " + detail;
            break;
        case CURLE_PEER_FAILED_VERIFICATION: {
            constexpr std::string_view kPrefix = "SSL certificate problem: ";
            if (detail.starts_with(kPrefix)) detail.erase(0, kPrefix.size());
            r.error = fmt::format("certificate verify failed: {}; check the cluster's {}{}", detail,
                                  config_.ca_source.empty() ? "certificate-authority (none is set: the system's roots "
                                                              "were used)"
                                                            : "certificate-authority (" + config_.ca_source + ")",
                                  config_.tls_server_name.empty() ? " or set tls-server-name" : " and tls-server-name");
            r.retryable = false;
            break;
        }
        case CURLE_SSL_CACERT_BADFILE:
            r.error = fmt::format("cannot load the certificate authority ({}): {}", config_.ca_source, detail);
            r.retryable = false;
            break;
        case CURLE_SSL_CERTPROBLEM:
            r.error = "cannot use the client certificate or key: " + detail;
            r.retryable = false;
            break;
        case CURLE_SSL_CONNECT_ERROR:
            r.error = "TLS handshake failed: " + detail;
            break;
        case CURLE_URL_MALFORMAT:
        case CURLE_UNSUPPORTED_PROTOCOL:
            r.error = fmt::format("invalid server URL \"{}\": {}", config_.server, detail);
            r.retryable = false;
            break;
        case CURLE_PARTIAL_FILE:
        case CURLE_RECV_ERROR:
        case CURLE_SEND_ERROR:
        case CURLE_GOT_NOTHING:
            r.error = "connection lost: " + detail;
            break;
        default:
            r.error = detail;
    }
    // A stream that broke after a status arrived keeps it, so callers can tell a 200 cut short.
    r.body = std::move(t.body);
    return r;
}

Error ApiClient::error_for(const HttpResponse& r, std::string_view action, std::string_view remedy) const {
    const std::string where = config_.describe();
    if (r.status == 0) return Error{fmt::format("{}: {}", where, r.error)};
    const std::string reason = reason_phrase(r.status);
    const std::string head = reason.empty() ? fmt::format("HTTP {}", r.status) : fmt::format("{} {}", r.status, reason);
    const std::string message = status_message(r.body);
    switch (r.status) {
        case 401:
            return Error{fmt::format("{}: {}: {}", where, head, credentials_.rejection_hint())};
        case 403:
            if (action.empty()) return Error{fmt::format("{}: {}: {}", where, head, message)};
            return Error{fmt::format("{}: {}: the user cannot {}{}; the server said: {}", where, head, action,
                                     remedy.empty() ? "" : fmt::format(" ({})", remedy), message)};
        case 404:
            if (action.empty()) return Error{fmt::format("{}: {}: {}", where, head, message)};
            return Error{fmt::format("{}: {}: cannot {}: {}", where, head, action, message)};
        default:
            if (message.empty()) return Error{fmt::format("{}: {}", where, head)};
            return Error{fmt::format("{}: {}: {}", where, head, message)};
    }
}

}  // namespace npt::k8s
