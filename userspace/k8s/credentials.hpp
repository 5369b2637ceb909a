// The credentials requests carry, kept current: a token file re-read when it changes (bound service-account
// tokens rotate), client certificate files likewise, and exec plugin credentials re-run when they expire or
// the server rejects them (401). Thread-safe: every request of every informer asks for them.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "k8s/client_config.hpp"
#include "k8s/exec_credential.hpp"
#include "k8s/file_util.hpp"

namespace npt::k8s {

struct AuthMaterial {
    std::string bearer_token;
    std::string client_certificate_pem;
    std::string client_key_pem;
    std::string username, password;
    uint64_t generation = 0;  // changes whenever the material does
};

class Credentials {
  public:
    explicit Credentials(const ClientConfig& config, std::chrono::milliseconds exec_timeout = std::chrono::seconds(60));

    // The material to send now. Errors (an exec plugin that fails, an unreadable token file) are one line
    // without the server prefix.
    Result<std::shared_ptr<const AuthMaterial>> current();

    // The server answered 401 to a request made with material of this generation. Refreshes what can be
    // refreshed; returns whether retrying the request may succeed.
    bool reject(uint64_t generation);

    // Says what was rejected and what to do, for a 401: "the token was rejected; refresh your credentials
    // ...".
    std::string rejection_hint() const;

    // How many times the exec plugin ran (tests).
    uint64_t exec_runs() const;

  private:
    // Whether `content` changed; an error only when the file has never been read (a rotation in progress keeps
    // what worked).
    Result<bool> refresh_file(const std::string& path, FileStamp& stamp, std::string& content);

    const ClientConfig config_;
    const std::chrono::milliseconds exec_timeout_;
    mutable std::mutex mu_;
    std::shared_ptr<const AuthMaterial> material_;
    uint64_t generation_ = 0;
    FileStamp token_stamp_, cert_stamp_, key_stamp_;
    std::string file_token_, file_cert_, file_key_;
    std::optional<ExecCredential> exec_;
    bool exec_rejected_ = false;
    uint64_t exec_runs_ = 0;
};

}  // namespace npt::k8s
