// Test helper: runs tests/fake-apiserver/fake_apiserver.py on a free port of 127.0.0.1 for the lifetime of
// the object (killed in the destructor, so also when a test fails), and drives its /_control API.
// Certificates are generated once per test process into a temporary directory removed at exit.
//
// Needs NPT_PYTHON3 and NPT_FAKE_APISERVER_DIR defined by the build.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "k8s/api_client.hpp"
#include "k8s/client_config.hpp"

extern char** environ;

namespace npt::testing {

// A directory removed with its contents when the object goes.
class TempDir {
  public:
    explicit TempDir(std::string_view prefix = "npt-k8s-test") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (std::string(prefix) + "-XXXXXX")).string();
        if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }
    std::string write(std::string_view name, std::string_view content) const {
        const std::string p = file(name);
        // Write then rename: a reader (a token file watcher) never sees half a file.
        const std::string tmp = p + ".tmp";
        {
            std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
            out << content;
        }
        std::filesystem::rename(tmp, p);
        return p;
    }

  private:
    std::string path_;
};

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline int run_process(const std::vector<std::string>& args) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    if (::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string fake_apiserver_script() {
    return std::string(NPT_FAKE_APISERVER_DIR) + "/fake_apiserver.py";
}
inline std::string exec_plugin_script() {
    return std::string(NPT_FAKE_APISERVER_DIR) + "/exec_plugin.py";
}
inline std::string python3() {
    return NPT_PYTHON3;
}

// ca.crt, server.crt/key, client.crt/key (CN cert-user), other-ca.crt. ctest runs every test case as a
// process of its own, so the set is made once into NPT_TEST_CERT_CACHE (in the build tree) when the build
// defines it, and remade when a day old (the certificates are valid for three); else once per process.
inline bool fresh_cert_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    for (const char* f :
         {"ca.crt", "server.crt", "server.key", "client.crt", "client.key", "other-ca.crt", "other-ca.key"}) {
        if (!fs::exists(dir + "/" + f, ec)) return false;
    }
    const auto age = fs::file_time_type::clock::now() - fs::last_write_time(dir + "/ca.crt", ec);
    return !ec && age < std::chrono::hours(24);
}

inline void generate_certs(const std::string& dir) {
    if (run_process({python3(), fake_apiserver_script(), "--gen-certs", dir}) != 0) {
        throw std::runtime_error("fake_apiserver.py --gen-certs failed");
    }
}

inline const std::string& cert_dir() {
#ifdef NPT_TEST_CERT_CACHE
    static const std::string dir = [] {
        namespace fs = std::filesystem;
        const std::string cache = NPT_TEST_CERT_CACHE;
        if (fresh_cert_dir(cache)) return cache;
        std::string tmp = cache + ".tmp-XXXXXX";
        if (!::mkdtemp(tmp.data())) throw std::runtime_error("mkdtemp failed for " + cache);
        generate_certs(tmp);
        std::error_code ec;
        if (fs::exists(cache, ec) && !fresh_cert_dir(cache)) fs::remove_all(cache, ec);
        fs::rename(tmp, cache, ec);  // another test process may have won the race: then use its set
        if (ec) fs::remove_all(tmp, ec);
        if (!fresh_cert_dir(cache)) throw std::runtime_error("cannot set up test certificates in " + cache);
        return cache;
    }();
    return dir;
#else
    static TempDir dir("npt-k8s-certs");
    static std::once_flag once;
    std::call_once(once, [] { generate_certs(dir.path()); });
    return dir.path();
#endif
}

class FakeApiServer {
  public:
    struct Options {
        std::vector<std::string> tokens{"test-token=alice"};  // TOKEN=USER
        double bookmark_interval = 0.2;
        bool gone_as_status = false;
    };

    FakeApiServer() : FakeApiServer(Options{}) {}
    explicit FakeApiServer(const Options& o) {
        const std::string ready = dir_.file("ready");
        std::vector<std::string> args{python3(),
                                      fake_apiserver_script(),
                                      "--certs",
                                      cert_dir(),
                                      "--port",
                                      "0",
                                      "--ready-file",
                                      ready,
                                      "--bookmark-interval",
                                      std::to_string(o.bookmark_interval),
                                      "--exit-with-parent"};
        for (const auto& t : o.tokens) {
            args.push_back("--token");
            args.push_back(t);
        }
        if (o.gone_as_status) args.push_back("--gone-as-status");
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::posix_spawn(&pid_, argv[0], nullptr, nullptr, argv.data(), environ) != 0) {
            throw std::runtime_error("cannot start the fake API server");
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < deadline) {
            const std::string text = read_file(ready);
            if (!text.empty()) {
                port_ = std::stoi(text);
                break;
            }
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                throw std::runtime_error("the fake API server exited at start");
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        if (port_ == 0) {
            stop();
            throw std::runtime_error("the fake API server did not start within 20 s");
        }
        k8s::ClientConfig admin = token_config("test-token");
        control_ = std::make_unique<k8s::ApiClient>(admin);
    }

    ~FakeApiServer() { stop(); }
    FakeApiServer(const FakeApiServer&) = delete;
    FakeApiServer& operator=(const FakeApiServer&) = delete;

    void stop() {
        control_.reset();
        if (pid_ <= 0) return;
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 100; ++i) {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ::kill(pid_, SIGKILL);
        int status = 0;
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
    }

    int port() const { return port_; }
    std::string server() const { return "https://127.0.0.1:" + std::to_string(port_); }
    std::string ca_file() const { return cert_dir() + "/ca.crt"; }

    // A client configuration as a kubeconfig context "test" with this token would give.
    k8s::ClientConfig token_config(const std::string& token) const {
        k8s::ClientConfig c;
        c.context = "test";
        c.server = server();
        c.ns = "default";
        c.ca_pem = read_file(ca_file());
        c.ca_source = ca_file();
        c.token = token;
        return c;
    }

    // POST /_control/<op> with a JSON body; throws unless 200.
    std::string control(std::string_view op, std::string_view json = "{}") {
        auto r = control_->request("POST", "/_control/" + std::string(op), json);
        if (r.status != 200) {
            throw std::runtime_error("control " + std::string(op) + " failed: " + std::to_string(r.status) + " " +
                                     r.body + r.error);
        }
        return r.body;
    }
    std::string apply(std::string_view json) { return control("apply", json); }
    std::string remove(std::string_view kind, std::string_view ns, std::string_view name) {
        return control("delete", "{\"kind\":\"" + std::string(kind) + "\",\"namespace\":\"" + std::string(ns) +
                                     "\",\"name\":\"" + std::string(name) + "\"}");
    }
    std::string stats() {
        auto r = control_->get("/_control/stats");
        return r.body;
    }

  private:
    TempDir dir_{"npt-fake-apiserver"};
    pid_t pid_ = -1;
    int port_ = 0;
    std::unique_ptr<k8s::ApiClient> control_;
};

}  // namespace npt::testing
