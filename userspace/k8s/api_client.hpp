// HTTPS to the Kubernetes API server over libcurl: plain requests, line-streamed GETs (watches), the
// credentials of credentials.hpp with one retry after a 401, TLS as the kubeconfig says (CA data or file
// only, never the system roots as well; insecure-skip-tls-verify; tls-server-name), and cancellation.
//
// HTTP statuses are results, not errors: a caller decides what a 410 means. Transport failures come back
// in the response (status 0); error_for() turns either into the one-line error users see, e.g.
//   context "prod" (https://10.0.0.1:6443): cannot connect: Connection refused
//   context "prod" (https://10.0.0.1:6443): 401 Unauthorized: the token was rejected; refresh your
//   credentials ...
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "k8s/cancellation.hpp"
#include "k8s/client_config.hpp"
#include "k8s/credentials.hpp"

namespace npt::k8s {

struct HttpResponse {
    long status = 0;        // the HTTP status; 0 when the request failed before one arrived
    std::string body;       // for a stream, only a non-2xx body
    std::string error;      // the failure when status is 0 (one line, without the server prefix)
    bool retryable = true;  // for a failure: false when retrying cannot help (TLS verification, credentials setup)
    bool cancelled = false;

    bool ok() const { return status >= 200 && status < 300; }
};

struct ApiClientOptions {
    std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
    std::chrono::milliseconds request_timeout{std::chrono::seconds(120)};  // a whole non-streaming request
    std::chrono::milliseconds exec_timeout{std::chrono::seconds(60)};      // an exec credential plugin run
    std::string user_agent = "netpol-trace";
};

// Return false to stop the stream (the response then reads as a clean end).
using LineHandler = std::function<bool(std::string_view line)>;

class ApiClient {
  public:
    explicit ApiClient(ClientConfig config, ApiClientOptions options = {});
    ~ApiClient();
    ApiClient(const ApiClient&) = delete;
    ApiClient& operator=(const ApiClient&) = delete;

    const ClientConfig& config() const { return config_; }
    Credentials& credentials() { return credentials_; }

    // `path` starts with '/' and may carry a query: "/api/v1/pods?limit=500". Thread-safe.
    HttpResponse get(std::string_view path, const Cancellation* cancel = nullptr);
    HttpResponse request(std::string_view method, std::string_view path, std::string_view body = {},
                         std::string_view content_type = "application/json", const Cancellation* cancel = nullptr);

    // A GET whose 2xx body is read line by line as it arrives (watch streams). Returns when the server ends
    // the stream, on_line returns false, `max_duration` passes (0: no limit) or `cancel` fires.
    HttpResponse stream_lines(std::string_view path, const LineHandler& on_line, const Cancellation* cancel = nullptr,
                              std::chrono::milliseconds max_duration = {});

    // The one-line error for a failed response, naming the context and server. `action` says what was
    // attempted ("list pods at the cluster scope"); `remedy` is added to a 403 ("needs get, list and watch").
    Error error_for(const HttpResponse& r, std::string_view action = {}, std::string_view remedy = {}) const;

  private:
    struct Handle;
    struct Transfer;

    Handle* acquire();
    void release(Handle* h);
    HttpResponse perform(std::string_view method, std::string_view path, std::string_view body,
                         std::string_view content_type, const LineHandler* on_line, const Cancellation* cancel,
                         std::chrono::milliseconds timeout);
    HttpResponse perform_once(Handle& h, const AuthMaterial& auth, std::string_view method, std::string_view path,
                              std::string_view body, std::string_view content_type, const LineHandler* on_line,
                              const Cancellation* cancel, std::chrono::milliseconds timeout);

    const ClientConfig config_;
    const ApiClientOptions options_;
    Credentials credentials_;
    std::string url_base_;    // scheme://host:port[/prefix] as requests address it
    std::string connect_to_;  // CURLOPT_CONNECT_TO entry when tls-server-name differs from the host
    std::string host_header_;
    std::string config_error_;  // an unusable server URL
    std::mutex pool_mu_;
    std::vector<Handle*> pool_;
};

}  // namespace npt::k8s
