// Authentication and TLS against the fake API server, through real kubeconfig files: bearer tokens, client
// certificates (files and inline data), exec plugins (tokens, certificates, re-run after a 401), in-cluster
// service-account tokens that rotate, CA verification and tls-server-name, and the one-line errors for 401,
// 403, a failed verification and a refused connection. Also the pod proxy path.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "fake_apiserver.hpp"
#include "common/base64.hpp"
#include "k8s/cluster_informer.hpp"
#include "k8s/fetch_cluster_state.hpp"
#include "k8s_test_objects.hpp"

namespace npt::k8s {
namespace {

using namespace std::chrono_literals;
using npt::testing::cert_dir;
using npt::testing::FakeApiServer;
using npt::testing::TempDir;

std::string kubeconfig(const std::string& server, const std::string& cluster_extra, const std::string& user) {
    return fmt::format(R"(apiVersion: v1
kind: Config
current-context: test
clusters:
- name: fake
  cluster:
    server: {}
{}
users:
- name: me
  user:
{}
contexts:
- name: test
  context: {{cluster: fake, user: me}}
)",
                       server, cluster_extra, user);
}

std::string ca_line(const std::string& ca_file) {
    return "    certificate-authority: " + ca_file;
}

Result<std::shared_ptr<const ClusterState>> fetch_with(const std::string& kubeconfig_path) {
    ClientOptions o;
    o.kubeconfig = kubeconfig_path;
    return fetch_cluster_state(o);
}

void apply_one_pod(FakeApiServer& srv) {
    srv.apply(npt::testing::pod_json("shop", "web-1", "10.0.0.1"));
}

TEST(K8sAuth, WrongTokenIsAClearOneLineError) {
    FakeApiServer srv;
    TempDir dir;
    const auto kc = dir.write("kc", kubeconfig(srv.server(), ca_line(srv.ca_file()), "    token: not-the-token"));
    const std::string expected = "context \"test\" (" + srv.server() +
                                 "): 401 Unauthorized: the token was rejected; refresh your credentials (kubectl auth "
                                 "whoami)";
    auto r = fetch_with(kc);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, expected);

    // The informer stops waiting at once: retrying a rejected token cannot help.
    auto cfg = load_client_config(kc, "");
    ASSERT_TRUE(cfg);
    ClusterInformer informer(std::make_shared<ApiClient>(*cfg), npt::testing::fast_informer_options());
    informer.start();
    const auto start = std::chrono::steady_clock::now();
    auto s = informer.wait_synced(10s);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message, expected);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

TEST(K8sAuth, ClientCertificateFilesAndInlineData) {
    FakeApiServer srv;
    apply_one_pod(srv);
    TempDir dir;
    const std::string certs = cert_dir();
    const auto files = dir.write("files", kubeconfig(srv.server(), ca_line(srv.ca_file()),
                                                     "    client-certificate: " + certs + "/client.crt\n" +
                                                         "    client-key: " + certs + "/client.key"));
    auto r = fetch_with(files);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE((*r)->find_pod("shop", "web-1"));

    const auto inline_data = dir.write(
        "inline",
        kubeconfig(srv.server(),
                   "    certificate-authority-data: " + base64_encode(npt::testing::read_file(srv.ca_file())),
                   "    client-certificate-data: " + base64_encode(npt::testing::read_file(certs + "/client.crt")) +
                       "\n    client-key-data: " + base64_encode(npt::testing::read_file(certs + "/client.key"))));
    auto r2 = fetch_with(inline_data);
    ASSERT_TRUE(r2) << r2.error().message;
    EXPECT_TRUE((*r2)->find_pod("shop", "web-1"));

    // A certificate from a CA the server does not trust ends the TLS handshake.
    const auto other = dir.write("other", kubeconfig(srv.server(), ca_line(srv.ca_file()),
                                                     "    client-certificate: " + certs + "/other-ca.crt\n" +
                                                         "    client-key: " + certs + "/other-ca.key"));
    // How the refusal reaches libcurl depends on timing under TLS 1.3: an alert ("the server rejected the
    // client certificate ...") or a connection closed during the first read.
    auto r3 = fetch_with(other);
    ASSERT_FALSE(r3);
    const std::string& m3 = r3.error().message;
    EXPECT_TRUE(m3.starts_with("context \"test\" (" + srv.server() + "): ")) << m3;
    EXPECT_TRUE(m3.find("the server rejected the client certificate") != std::string::npos ||
                m3.find("connection lost") != std::string::npos)
        << m3;
}

TEST(K8sAuth, ExecPluginTokenRenewedAfter401) {
    FakeApiServer srv;
    apply_one_pod(srv);
    TempDir dir;
    const auto token = dir.write("token", "test-token");
    const auto kc =
        dir.write("kc", kubeconfig(srv.server(), ca_line(srv.ca_file()),
                                   fmt::format("    exec:\n      apiVersion: client.authentication.k8s.io/v1\n"
                                               "      interactiveMode: Never\n      command: {}\n"
                                               "      args: [{}, --token-file, {}, --count-file, {}, --info-file, {}]\n"
                                               "      provideClusterInfo: true\n",
                                               npt::testing::python3(), npt::testing::exec_plugin_script(), token,
                                               dir.file("count"), dir.file("info"))));
    auto cfg = load_client_config(kc, "");
    ASSERT_TRUE(cfg) << cfg.error().message;
    ApiClient client(*cfg);
    EXPECT_EQ(client.get("/api/v1/pods").status, 200);
    EXPECT_EQ(client.get("/api/v1/pods").status, 200);
    EXPECT_EQ(client.credentials().exec_runs(), 1u);
    EXPECT_NE(npt::testing::read_file(dir.file("info")).find("\"server\":\"" + srv.server() + "\""), std::string::npos);

    // The server stops accepting the old token; the plugin now hands out the new one.
    srv.control("config", R"({"tokens": {"rotated-token": "alice"}})");
    dir.write("token", "rotated-token");
    EXPECT_EQ(client.get("/api/v1/pods").status, 200);  // 401, plugin re-run, retried
    EXPECT_EQ(client.credentials().exec_runs(), 2u);
    EXPECT_EQ(npt::testing::read_file(dir.file("count")), "run\nrun\n");
}

TEST(K8sAuth, ExecPluginClientCertificate) {
    FakeApiServer srv;
    apply_one_pod(srv);
    TempDir dir;
    const auto kc =
        dir.write("kc", kubeconfig(srv.server(), ca_line(srv.ca_file()),
                                   fmt::format("    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n"
                                               "      command: {}\n      args: [{}, --cert, {}, --key, {}]\n",
                                               npt::testing::python3(), npt::testing::exec_plugin_script(),
                                               cert_dir() + "/client.crt", cert_dir() + "/client.key")));
    auto r = fetch_with(kc);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE((*r)->find_pod("shop", "web-1"));
}

TEST(K8sAuth, CaVerificationFailureIsClear) {
    FakeApiServer srv;
    TempDir dir;
    const auto kc =
        dir.write("kc", kubeconfig(srv.server(), ca_line(cert_dir() + "/other-ca.crt"), "    token: test-token"));
    auto r = fetch_with(kc);
    ASSERT_FALSE(r);
    const std::string prefix = "context \"test\" (" + srv.server() + "): certificate verify failed: ";
    EXPECT_TRUE(r.error().message.starts_with(prefix)) << r.error().message;
    EXPECT_NE(r.error().message.find("check the cluster's certificate-authority (" + cert_dir() + "/other-ca.crt)"),
              std::string::npos)
        << r.error().message;

    auto cfg = load_client_config(kc, "");
    ClusterInformer informer(std::make_shared<ApiClient>(*cfg), npt::testing::fast_informer_options());
    informer.start();
    auto s = informer.wait_synced(10s);
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().message.starts_with(prefix)) << s.error().message;
}

TEST(K8sAuth, TlsServerName) {
    FakeApiServer srv;
    apply_one_pod(srv);
    TempDir dir;
    // The certificate names 127.0.0.1, localhost and fake-apiserver.test.
    const auto good = dir.write(
        "good", kubeconfig(srv.server(), ca_line(srv.ca_file()) + "\n    tls-server-name: fake-apiserver.test",
                           "    token: test-token"));
    auto r = fetch_with(good);
    ASSERT_TRUE(r) << r.error().message;
    const auto bad =
        dir.write("bad", kubeconfig(srv.server(), ca_line(srv.ca_file()) + "\n    tls-server-name: wrong.test",
                                    "    token: test-token"));
    auto r2 = fetch_with(bad);
    ASSERT_FALSE(r2);
    EXPECT_NE(r2.error().message.find("certificate verify failed"), std::string::npos) << r2.error().message;
    EXPECT_NE(r2.error().message.find("tls-server-name"), std::string::npos) << r2.error().message;
    const auto insecure =
        dir.write("insecure", kubeconfig(srv.server(), "    insecure-skip-tls-verify: true", "    token: test-token"));
    ASSERT_TRUE(fetch_with(insecure));
}

TEST(K8sAuth, ForbiddenNamesTheResourceAndTheVerbs) {
    FakeApiServer srv;
    srv.control("config", R"({"forbid": ["networkpolicies"]})");
    ClusterInformer informer(std::make_shared<ApiClient>(srv.token_config("test-token")),
                             npt::testing::fast_informer_options());
    informer.start();
    auto s = informer.wait_synced(10s);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message,
              "context \"test\" (" + srv.server() +
                  "): 403 Forbidden: the user cannot list networkpolicies at the cluster scope (needs get, "
                  "list and "
                  "watch on networkpolicies.networking.k8s.io); the server said: "
                  "networkpolicies.networking.k8s.io is "
                  "forbidden: User \"alice\" cannot list resource \"networkpolicies\" in API group "
                  "\"networking.k8s.io\" at the cluster scope");
}

TEST(K8sAuth, RefusedConnectionKeepsRetryingAndSaysSo) {
    ClientConfig cfg;
    cfg.context = "test";
    cfg.server = "https://127.0.0.1:1";
    cfg.token = "t";
    ClusterInformer informer(std::make_shared<ApiClient>(cfg), npt::testing::fast_informer_options());
    informer.start();
    auto s = informer.wait_synced(1s);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().message,
              "context \"test\" (https://127.0.0.1:1): cannot connect: Connection refused (still failing "
              "after 1 s)");
    EXPECT_FALSE(informer.synced());
}

TEST(K8sAuth, InClusterServiceAccountTokenRotates) {
    FakeApiServer srv;
    apply_one_pod(srv);
    TempDir sa;
    sa.write("token", "test-token\n");
    sa.write("ca.crt", npt::testing::read_file(srv.ca_file()));
    sa.write("namespace", "netpol-trace");
    ConfigEnvironment env;
    env.service_host = "127.0.0.1";
    env.service_port = std::to_string(srv.port());
    env.service_account_dir = sa.path();
    ClientOptions o;
    o.environment = env;
    auto cfg = load_client_config(o);
    ASSERT_TRUE(cfg) << cfg.error().message;
    ASSERT_TRUE(cfg->in_cluster);
    ApiClient client(*cfg);
    EXPECT_EQ(client.get("/api/v1/pods").status, 200);

    // The kubelet rotates the bound token; the server stops accepting the old one.
    srv.control("config", R"({"tokens": {"second-token": "system:serviceaccount:netpol-trace:agent"}})");
    sa.write("token", "second-token\n");
    EXPECT_EQ(client.get("/api/v1/pods").status, 200);

    // A token the server rejects: the in-cluster wording.
    sa.write("token", "revoked\n");
    auto r = client.get("/api/v1/pods");
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(client.error_for(r).message, "in-cluster config (" + srv.server() +
                                               "): 401 Unauthorized: the service account token was rejected; "
                                               "check that the pod's service account "
                                               "exists and its token is mounted");
}

TEST(K8sAuth, KubeconfigEnvListPicksTheContext) {
    FakeApiServer srv;
    apply_one_pod(srv);
    TempDir dir;
    const auto a = dir.write("a", "current-context: elsewhere\n");
    const auto b = dir.write("b", kubeconfig(srv.server(), ca_line(srv.ca_file()), "    token: test-token"));
    ClientOptions o;
    o.context = "test";
    o.environment = ConfigEnvironment{};
    o.environment->kubeconfig = a + ":" + b;
    auto r = fetch_cluster_state(o);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_TRUE((*r)->find_pod("shop", "web-1"));
    o.context.clear();  // current-context "elsewhere" from the first file: not defined anywhere
    auto r2 = fetch_cluster_state(o);
    ASSERT_FALSE(r2);
    EXPECT_NE(r2.error().message.find("context \"elsewhere\" not found (contexts: test)"), std::string::npos)
        << r2.error().message;
}

// A one-connection HTTP server answering "ok" to anything: the pod behind the proxy path.
class TinyHttpServer {
  public:
    TinyHttpServer() {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
        ::listen(fd_, 4);
        socklen_t len = sizeof addr;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
        port_ = ntohs(addr.sin_port);
        thread_ = std::thread([this] {
            const int c = ::accept(fd_, nullptr, nullptr);
            if (c < 0) return;
            char buf[4096];
            const ssize_t n = ::read(c, buf, sizeof buf);
            request_.assign(buf, n > 0 ? static_cast<size_t>(n) : 0);
            const std::string resp = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";
            (void)!::write(c, resp.data(), resp.size());
            ::close(c);
        });
    }
    ~TinyHttpServer() {
        ::shutdown(fd_, SHUT_RDWR);
        thread_.join();
        ::close(fd_);
    }
    int port() const { return port_; }
    std::string request() const { return request_; }

  private:
    int fd_ = -1;
    int port_ = 0;
    std::thread thread_;
    std::string request_;
};

TEST(K8sAuth, PodProxyPath) {
    FakeApiServer srv;
    TinyHttpServer pod;
    srv.control("config", fmt::format(R"({{"proxy_target": "127.0.0.1:{}"}})", pod.port()));
    ApiClient client(srv.token_config("test-token"));
    auto r = client.get("/api/v1/namespaces/kube-system/pods/netpol-trace-abc:9090/proxy/metrics?x=1");
    EXPECT_EQ(r.status, 200) << r.body << r.error;
    EXPECT_EQ(r.body, "ok");
}

}  // namespace
}  // namespace npt::k8s
