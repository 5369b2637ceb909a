// kubeconfig parsing and merging, the loading rules (KUBECONFIG, ~/.kube/config, in-cluster), credentials
// (token files, exec plugins) and the one-line errors users see. No API server needed.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "fake_apiserver.hpp"
#include "k8s/api_client.hpp"
#include "common/base64.hpp"
#include "k8s/client_config.hpp"
#include "k8s/credentials.hpp"
#include "k8s/exec_credential.hpp"
#include "k8s/kubeconfig.hpp"

namespace npt::k8s {
namespace {

using npt::testing::TempDir;

// An environment with nothing set: no KUBECONFIG, no HOME, not in a pod.
ConfigEnvironment empty_env() {
    ConfigEnvironment env;
    env.service_account_dir = "/nonexistent/serviceaccount";
    return env;
}

Result<ClientConfig> load(const ConfigEnvironment& env, const std::string& kubeconfig = "",
                          const std::string& context = "") {
    ClientOptions o;
    o.kubeconfig = kubeconfig;
    o.context = context;
    o.environment = env;
    return load_client_config(o);
}

constexpr const char* kTwoContexts = R"(
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev-cluster
  cluster:
    server: https://dev.example:6443/
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
- name: prod-cluster
  cluster:
    server: 10.0.0.1:6443
    insecure-skip-tls-verify: true
    tls-server-name: kubernetes
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    tokenFile: secrets/token
contexts:
- name: dev
  context: {cluster: dev-cluster, user: dev-user, namespace: web}
- name: prod
  context: {cluster: prod-cluster, user: prod-user}
)";

TEST(Base64, RoundTripsAndRejectsGarbage) {
    for (std::string s : {"", "a", "ab", "abc", "abcd", "hello, world\n"}) {
        EXPECT_EQ(base64_decode(base64_encode(s)).value_or("?"), s);
    }
    EXPECT_EQ(base64_decode("aGVs\nbG8=").value_or("?"), "hello");
    EXPECT_FALSE(base64_decode("not base64!"));
    EXPECT_FALSE(base64_decode("aGVsbG8=x"));
}

TEST(Kubeconfig, ParsesContextsClustersAndUsers) {
    auto cfg = parse_kubeconfig(kTwoContexts, "/home/u/.kube/config");
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(cfg->current_context, "dev");
    ASSERT_EQ(cfg->contexts.size(), 2u);
    EXPECT_EQ(cfg->contexts.at("dev").ns, "web");
    EXPECT_EQ(cfg->clusters.at("dev-cluster").certificate_authority_data, "-----BEGIN CERTIFICATE-----\n");
    EXPECT_TRUE(cfg->clusters.at("prod-cluster").insecure_skip_tls_verify);
    // Relative paths are relative to the file that holds them.
    EXPECT_EQ(cfg->users.at("prod-user").token_file, "/home/u/.kube/secrets/token");
}

TEST(Kubeconfig, ParsesExecPlugins) {
    auto cfg = parse_kubeconfig(R"(
users:
- name: eks
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./bin/aws-iam-authenticator
      args: [token, -i, prod]
      env: [{name: AWS_PROFILE, value: prod}]
      installHint: |
        install it
        from the website
      provideClusterInfo: true
      interactiveMode: Never
)",
                                "/cfg/kubeconfig");
    ASSERT_TRUE(cfg) << cfg.error().message;
    const auto& exec = cfg->users.at("eks").exec;
    ASSERT_TRUE(exec);
    EXPECT_EQ(exec->api_version, "client.authentication.k8s.io/v1beta1");
    EXPECT_EQ(exec->command, "/cfg/bin/aws-iam-authenticator");
    EXPECT_EQ(exec->args, (std::vector<std::string>{"token", "-i", "prod"}));
    ASSERT_EQ(exec->env.size(), 1u);
    EXPECT_EQ(exec->env[0].name, "AWS_PROFILE");
    EXPECT_TRUE(exec->provide_cluster_info);
    EXPECT_EQ(exec->interactive_mode, "Never");

    auto plain = parse_kubeconfig("users: [{name: u, user: {exec: {command: gke-gcloud-auth-plugin}}}]", "/cfg/k");
    ASSERT_TRUE(plain);
    EXPECT_EQ(plain->users.at("u").exec->command, "gke-gcloud-auth-plugin");  // looked up in PATH
}

TEST(Kubeconfig, ErrorsNameTheFileAndField) {
    auto bad64 = parse_kubeconfig("users:\n- name: u\n  user:\n    client-key-data: '%%%'\n", "kc.yaml");
    ASSERT_FALSE(bad64);
    EXPECT_EQ(bad64.error().message, "kubeconfig kc.yaml: users[0].user.client-key-data: invalid base64");

    auto syntax = parse_kubeconfig("clusters: [\n", "kc.yaml");
    ASSERT_FALSE(syntax);
    EXPECT_TRUE(syntax.error().message.starts_with("kubeconfig kc.yaml: line ")) << syntax.error().message;

    auto type = parse_kubeconfig("clusters: {a: b}\n", "kc.yaml");
    ASSERT_FALSE(type);
    EXPECT_EQ(type.error().message, "kubeconfig kc.yaml: clusters: expected a list, got a map");

    auto noname = parse_kubeconfig("contexts: [{context: {cluster: c}}]\n", "kc.yaml");
    ASSERT_FALSE(noname);
    EXPECT_EQ(noname.error().message, "kubeconfig kc.yaml: contexts[0].name: required");

    auto boolean = parse_kubeconfig("clusters: [{name: c, cluster: {insecure-skip-tls-verify: maybe}}]\n", "kc.yaml");
    ASSERT_FALSE(boolean);
    EXPECT_EQ(boolean.error().message,
              "kubeconfig kc.yaml: clusters[0].cluster.insecure-skip-tls-verify: expected true or false, got "
              "\"maybe\"");
}

TEST(Kubeconfig, EmptyFileIsAnEmptyConfig) {
    auto cfg = parse_kubeconfig("", "empty");
    ASSERT_TRUE(cfg);
    EXPECT_TRUE(cfg->empty());
}

TEST(Kubeconfig, SameNameTwiceInOneFileKeepsTheLater) {
    auto cfg = parse_kubeconfig("users: [{name: u, user: {token: a}}, {name: u, user: {token: b}}]", "k");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->users.at("u").token, "b");
}

TEST(Kubeconfig, SplitsKubeconfigEnvLikeKubectl) {
    EXPECT_EQ(split_kubeconfig_env("a::b:a:"), (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(split_kubeconfig_env("").empty());
}

TEST(Kubeconfig, MergesFirstDefinitionWinsAndFirstCurrentContext) {
    TempDir dir;
    const auto a = dir.write("a", R"(
clusters: [{name: shared, cluster: {server: https://a.example}}]
users: [{name: shared-user, user: {token: from-a}}]
contexts: [{name: ctx-a, context: {cluster: shared, user: shared-user}}]
)");
    const auto b = dir.write("b", R"(
current-context: ctx-b
clusters: [{name: shared, cluster: {server: https://b.example}}, {name: only-b, cluster: {server: https://ob.example}}]
users: [{name: shared-user, user: {token: from-b}}]
contexts: [{name: ctx-b, context: {cluster: only-b, user: shared-user}}]
)");
    const auto c = dir.write("c", "current-context: ctx-a\n");
    ConfigEnvironment env = empty_env();
    env.kubeconfig = a + ":" + dir.file("missing") + ":" + b + ":" + c;

    auto cfg = load(env);
    ASSERT_TRUE(cfg) << cfg.error().message;
    // current-context: a sets none, b sets ctx-b first.
    EXPECT_EQ(cfg->context, "ctx-b");
    EXPECT_EQ(cfg->server, "https://ob.example");
    EXPECT_EQ(cfg->token, "from-a");  // the user of the first file that names it

    auto a_ctx = load(env, "", "ctx-a");
    ASSERT_TRUE(a_ctx) << a_ctx.error().message;
    EXPECT_EQ(a_ctx->server, "https://a.example");  // cluster "shared" from a, not b
}

TEST(LoadingRules, ExplicitKubeconfigOnlyAndMustExist) {
    TempDir dir;
    const auto file = dir.write("explicit", kTwoContexts);
    ConfigEnvironment env = empty_env();
    env.kubeconfig = dir.file("does-not-matter");
    auto cfg = load(env, file);
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(cfg->context, "dev");
    EXPECT_EQ(cfg->server, "https://dev.example:6443");
    EXPECT_EQ(cfg->ns, "web");
    EXPECT_EQ(cfg->token, "dev-token");

    auto missing = load(env, dir.file("nope"));
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "kubeconfig " + dir.file("nope") + ": cannot read: No such file or directory");
}

TEST(LoadingRules, HomeKubeConfigWhenKubeconfigUnset) {
    TempDir home;
    std::filesystem::create_directories(home.file(".kube"));
    home.write(".kube/config", kTwoContexts);
    std::filesystem::create_directories(home.file(".kube/secrets"));
    home.write(".kube/secrets/token", "prod-token\n");
    ConfigEnvironment env = empty_env();
    env.home = home.path();
    auto cfg = load(env, "", "prod");
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(cfg->server, "https://10.0.0.1:6443");  // no scheme: https
    EXPECT_TRUE(cfg->insecure_skip_tls_verify);
    EXPECT_EQ(cfg->tls_server_name, "kubernetes");
    EXPECT_EQ(cfg->token_file, home.file(".kube/secrets/token"));
    EXPECT_EQ(cfg->ns, "default");
    EXPECT_EQ(cfg->describe(), "context \"prod\" (https://10.0.0.1:6443)");
}

TEST(LoadingRules, ContextErrors) {
    TempDir dir;
    const auto file = dir.write("kc", kTwoContexts);
    auto missing = load(empty_env(), file, "staging");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message, "kubeconfig " + file + ": context \"staging\" not found (contexts: dev, prod)");

    const auto nocur = dir.write("nocur", "contexts: [{name: a, context: {cluster: c}}]\n");
    auto no_current = load(empty_env(), nocur);
    ASSERT_FALSE(no_current);
    EXPECT_EQ(no_current.error().message,
              "kubeconfig " + nocur + ": no current-context is set; pass --context NAME (contexts: a)");

    const auto nocluster = dir.write("nocluster", "current-context: a\ncontexts: [{name: a, context: {cluster: c}}]\n");
    auto no_cluster = load(empty_env(), nocluster);
    ASSERT_FALSE(no_cluster);
    EXPECT_EQ(no_cluster.error().message, "context \"a\": cluster \"c\" not found in kubeconfig " + nocluster);

    const auto nouser = dir.write("nouser", R"(
current-context: a
clusters: [{name: c, cluster: {server: https://x}}]
contexts: [{name: a, context: {cluster: c, user: ghost}}]
)");
    auto no_user = load(empty_env(), nouser);
    ASSERT_FALSE(no_user);
    EXPECT_EQ(no_user.error().message, "context \"a\" (https://x): user \"ghost\" not found in kubeconfig " + nouser);
}

TEST(LoadingRules, NothingConfigured) {
    ConfigEnvironment env = empty_env();
    TempDir home;
    env.home = home.path();
    auto cfg = load(env);
    ASSERT_FALSE(cfg);
    EXPECT_EQ(cfg.error().message, "no Kubernetes configuration: nothing in " + home.path() +
                                       "/.kube/config and not running in a pod; pass --kubeconfig FILE or set "
                                       "KUBECONFIG");
}

TEST(LoadingRules, InClusterWhenNoKubeconfig) {
    TempDir sa;
    sa.write("token", "sa-token\n");
    sa.write("ca.crt", "-----BEGIN CERTIFICATE-----\n");
    sa.write("namespace", "netpol-trace\n");
    ConfigEnvironment env = empty_env();
    env.service_host = "10.96.0.1";
    env.service_port = "443";
    env.service_account_dir = sa.path();
    ASSERT_TRUE(in_cluster_available(env));
    auto cfg = load(env);
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_TRUE(cfg->in_cluster);
    EXPECT_EQ(cfg->server, "https://10.96.0.1:443");
    EXPECT_EQ(cfg->token_file, sa.file("token"));
    EXPECT_EQ(cfg->ns, "netpol-trace");
    EXPECT_EQ(cfg->ca_pem, "-----BEGIN CERTIFICATE-----\n");
    EXPECT_EQ(cfg->describe(), "in-cluster config (https://10.96.0.1:443)");

    env.service_host = "fd00::1";
    auto v6 = load(env);
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->server, "https://[fd00::1]:443");

    // Asking for a context means a kubeconfig: no silent fallback to the pod's identity.
    auto ctx = load(env, "", "prod");
    ASSERT_FALSE(ctx);

    std::filesystem::remove(sa.file("token"));
    EXPECT_FALSE(in_cluster_available(env));
    env.service_host.reset();
    sa.write("token", "x");
    EXPECT_FALSE(in_cluster_available(env));
}

TEST(LoadingRules, KubeconfigWinsOverInCluster) {
    TempDir sa;
    sa.write("token", "sa-token");
    sa.write("ca.crt", "x");
    TempDir dir;
    ConfigEnvironment env = empty_env();
    env.service_host = "10.96.0.1";
    env.service_port = "443";
    env.service_account_dir = sa.path();
    env.kubeconfig = dir.write("kc", kTwoContexts);
    auto cfg = load(env);
    ASSERT_TRUE(cfg);
    EXPECT_FALSE(cfg->in_cluster);
    EXPECT_EQ(cfg->context, "dev");
}

TEST(ClientConfigFromKubeconfig, InlineDataOverridesFiles) {
    TempDir dir;
    dir.write("ca.crt", "FILE CA");
    dir.write("client.crt", "FILE CERT");
    dir.write("client.key", "FILE KEY");
    const auto file = dir.write("kc",
                                "current-context: c\n"
                                "clusters: [{name: c, cluster: {server: https://s, certificate-authority: ca.crt,"
                                " certificate-authority-data: " +
                                    base64_encode("DATA CA") +
                                    "}}]\n"
                                    "users: [{name: u, user: {client-certificate: client.crt, client-key: "
                                    "client.key, client-key-data: " +
                                    base64_encode("DATA KEY") +
                                    "}}]\n"
                                    "contexts: [{name: c, context: {cluster: c, user: u}}]\n");
    auto cfg = load(empty_env(), file);
    ASSERT_TRUE(cfg) << cfg.error().message;
    EXPECT_EQ(cfg->ca_pem, "DATA CA");
    EXPECT_EQ(cfg->client_certificate_file, dir.file("client.crt"));
    EXPECT_EQ(cfg->client_key_pem, "DATA KEY");
    EXPECT_TRUE(cfg->client_key_file.empty());
}

TEST(ClientConfigFromKubeconfig, RejectsContradictions) {
    auto check = [](const std::string& cluster, const std::string& user, const std::string& expected) {
        TempDir dir;
        dir.write("ca.crt", "CA");
        const auto file = dir.write("kc", "current-context: c\nclusters: [{name: c, cluster: {server: https://s" +
                                              cluster + "}}]\nusers: [{name: u, user: {" + user +
                                              "}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\n");
        auto cfg = load(empty_env(), file);
        ASSERT_FALSE(cfg) << "accepted " << cluster << " " << user;
        EXPECT_EQ(cfg.error().message, expected);
    };
    check(", insecure-skip-tls-verify: true, certificate-authority: ca.crt", "token: t",
          "context \"c\" (https://s): cluster \"c\" sets both insecure-skip-tls-verify and a certificate "
          "authority; "
          "remove one");
    check("", "client-certificate-data: " + base64_encode("C"),
          "context \"c\" (https://s): user \"u\": client-certificate is set without client-key");
    check("", "token: t, username: a, password: b",
          "context \"c\" (https://s): user \"u\": more than one authentication method (token and basic "
          "auth); only "
          "one is allowed");
    check("", "auth-provider: {name: gcp}",
          "context \"c\" (https://s): user \"u\": auth-provider \"gcp\" is not supported (kubectl dropped auth "
          "providers in 1.26); use the provider's exec credential plugin instead (e.g. gke-gcloud-auth-plugin, "
          "kubelogin)");
    check("", "exec: {apiVersion: client.authentication.k8s.io/v1, command: x}",
          "context \"c\" (https://s): user \"u\": exec: interactiveMode must be specified for "
          "client.authentication.k8s.io/v1 (Never, IfAvailable or Always)");
    check("", "exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}",
          "context \"c\" (https://s): user \"u\": exec: apiVersion client.authentication.k8s.io/v1alpha1 is "
          "not "
          "supported (use client.authentication.k8s.io/v1 or client.authentication.k8s.io/v1beta1)");
    check("", "tokenFile: /nonexistent/token",
          "context \"c\" (https://s): user \"u\": tokenFile /nonexistent/token: cannot read: No such file or "
          "directory");
}

TEST(ExecCredential, ParsesTokensCertificatesAndExpiry) {
    ExecConfig exec;
    exec.command = "plugin";
    exec.api_version = "client.authentication.k8s.io/v1";
    auto tok = parse_exec_credential(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
        "status":{"token":"abc","expirationTimestamp":"2030-01-02T03:04:05Z"}})",
                                     exec);
    ASSERT_TRUE(tok) << tok.error().message;
    EXPECT_EQ(tok->token, "abc");
    ASSERT_TRUE(tok->expiration);
    EXPECT_EQ(std::chrono::duration_cast<std::chrono::seconds>(tok->expiration->time_since_epoch()).count(),
              1893553445);

    auto cert = parse_exec_credential(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
        "status":{"clientCertificateData":"C","clientKeyData":"K"}})",
                                      exec);
    ASSERT_TRUE(cert);
    EXPECT_EQ(cert->client_certificate_pem, "C");
    EXPECT_FALSE(cert->expiration);

    auto wrong_version = parse_exec_credential(
        R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"x"}})",
        exec);
    ASSERT_FALSE(wrong_version);
    EXPECT_EQ(wrong_version.error().message,
              "exec plugin \"plugin\": plugin returned apiVersion \"client.authentication.k8s.io/v1beta1\", the "
              "kubeconfig expects \"client.authentication.k8s.io/v1\"");
    auto nothing = parse_exec_credential(
        R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}})", exec);
    ASSERT_FALSE(nothing);
    EXPECT_EQ(nothing.error().message,
              "exec plugin \"plugin\": plugin returned neither a token nor a client certificate and key");
    auto half = parse_exec_credential(
        R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientKeyData":"K"}})",
        exec);
    ASSERT_FALSE(half);
    EXPECT_FALSE(parse_exec_credential("not json", exec));
}

TEST(ExecCredential, ParsesRfc3339) {
    using namespace std::chrono;
    auto secs = [](std::string_view s) {
        auto t = parse_rfc3339(s);
        return t ? duration_cast<seconds>(t->time_since_epoch()).count() : -1;
    };
    EXPECT_EQ(secs("1970-01-01T00:00:00Z"), 0);
    EXPECT_EQ(secs("2024-02-29T12:00:00.123456789Z"), 1709208000);
    EXPECT_EQ(secs("2024-02-29T13:30:00+01:30"), 1709208000);
    EXPECT_EQ(secs("2024-02-30T00:00:00Z"), -1);
    EXPECT_EQ(secs("2024-02-29 12:00:00"), -1);
    EXPECT_EQ(secs("yesterday"), -1);
}

TEST(ExecCredential, TellsThePluginWhatItNeeds) {
    ExecConfig exec;
    exec.api_version = "client.authentication.k8s.io/v1beta1";
    EXPECT_EQ(
        exec_info_json(exec, {}),
        R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"interactive":false}})");
    exec.provide_cluster_info = true;
    ExecClusterInfo cluster{"https://10.0.0.1:6443", "kubernetes", false, "CA", ""};
    EXPECT_EQ(
        exec_info_json(exec, cluster),
        R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","spec":{"cluster":)"
        R"({"server":"https://10.0.0.1:6443","tls-server-name":"kubernetes","certificate-authority-data":"Q0E="},)"
        R"("interactive":false}})");
}

TEST(ExecCredential, RunsThePluginWithItsEnvironment) {
    TempDir dir;
    ExecConfig exec;
    exec.api_version = "client.authentication.k8s.io/v1";
    exec.interactive_mode = "IfAvailable";
    exec.command = npt::testing::python3();
    exec.args = {npt::testing::exec_plugin_script(),
                 "--token",
                 "from-plugin",
                 "--info-file",
                 dir.file("info"),
                 "--expire-seconds",
                 "3600"};
    auto cred = run_exec_plugin(exec, {"https://s", "", false, "", ""});
    ASSERT_TRUE(cred) << cred.error().message;
    EXPECT_EQ(cred->token, "from-plugin");
    ASSERT_TRUE(cred->expiration);
    EXPECT_GT(*cred->expiration, std::chrono::system_clock::now() + std::chrono::minutes(50));
    EXPECT_EQ(
        npt::testing::read_file(dir.file("info")),
        R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}})");
}

TEST(ExecCredential, FailuresAreOneLine) {
    ExecConfig exec;
    exec.api_version = "client.authentication.k8s.io/v1";
    exec.command = "/nonexistent/kubelogin";
    exec.install_hint = "Install kubelogin:\n  brew install kubelogin\n";
    auto missing = run_exec_plugin(exec, {});
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().message,
              "exec plugin \"/nonexistent/kubelogin\": cannot run: No such file or directory; Install kubelogin: "
              "brew install kubelogin");

    exec.command = npt::testing::python3();
    exec.args = {npt::testing::exec_plugin_script(), "--fail", "error: you must be logged in to the server"};
    auto failed = run_exec_plugin(exec, {});
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().message,
              "exec plugin \"" + exec.command + "\": exited with status 1: error: you must be logged in to the server");

    exec.interactive_mode = "Always";
    auto interactive = run_exec_plugin(exec, {});
    ASSERT_FALSE(interactive);
    EXPECT_NE(interactive.error().message.find("needs an interactive terminal"), std::string::npos);
}

TEST(Credentials, RereadsARotatedTokenFile) {
    TempDir dir;
    ClientConfig cfg;
    cfg.server = "https://s";
    cfg.token_file = dir.write("token", "first\n");
    Credentials creds(cfg);
    auto a = creds.current();
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ((*a)->bearer_token, "first");
    auto again = creds.current();
    EXPECT_EQ((*again)->generation, (*a)->generation);
    dir.write("token", "second\n");  // a new file renamed into place, as the kubelet does
    auto b = creds.current();
    ASSERT_TRUE(b);
    EXPECT_EQ((*b)->bearer_token, "second");
    EXPECT_NE((*b)->generation, (*a)->generation);
    // A 401 for the current generation with an unchanged file: retrying cannot help.
    EXPECT_FALSE(creds.reject((*b)->generation));
    // A 401 for an older generation: the material already changed, retry.
    EXPECT_TRUE(creds.reject((*a)->generation));
}

TEST(Credentials, RerunsExecPluginsWhenExpiredOrRejected) {
    TempDir dir;
    ClientConfig cfg;
    cfg.server = "https://s";
    ExecConfig exec;
    exec.api_version = "client.authentication.k8s.io/v1beta1";
    exec.command = npt::testing::python3();
    exec.args = {npt::testing::exec_plugin_script(), "--token-file", dir.write("t", "one"), "--count-file",
                 dir.file("count")};
    cfg.exec = exec;
    Credentials creds(cfg);
    auto a = creds.current();
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ((*a)->bearer_token, "one");
    ASSERT_TRUE(creds.current());
    EXPECT_EQ(creds.exec_runs(), 1u);  // no expiry: cached
    dir.write("t", "two");
    EXPECT_TRUE(creds.reject((*a)->generation));
    auto b = creds.current();
    ASSERT_TRUE(b);
    EXPECT_EQ((*b)->bearer_token, "two");
    EXPECT_EQ(creds.exec_runs(), 2u);

    // Already expired (within the renewal margin): every use runs the plugin again.
    cfg.exec->args.push_back("--expire-seconds");
    cfg.exec->args.push_back("1");
    Credentials expiring(cfg);
    ASSERT_TRUE(expiring.current());
    ASSERT_TRUE(expiring.current());
    EXPECT_EQ(expiring.exec_runs(), 2u);
}

TEST(ApiErrors, AreOneLineNamingContextAndServer) {
    ClientConfig cfg;
    cfg.context = "prod";
    cfg.server = "https://10.0.0.1:6443";
    cfg.token = "t";
    ApiClient client(cfg);
    HttpResponse unauthorized;
    unauthorized.status = 401;
    unauthorized.body = R"({"kind":"Status","code":401,"message":"Unauthorized"})";
    EXPECT_EQ(client.error_for(unauthorized).message,
              "context \"prod\" (https://10.0.0.1:6443): 401 Unauthorized: the token was rejected; refresh your "
              "credentials (kubectl auth whoami)");

    HttpResponse forbidden;
    forbidden.status = 403;
    forbidden.body =
        R"({"kind":"Status","code":403,"message":"networkpolicies.networking.k8s.io is forbidden: User \"bob\" cannot list resource \"networkpolicies\""})";
    EXPECT_EQ(client
                  .error_for(forbidden, "list networkpolicies at the cluster scope",
                             "needs get, list and watch on networkpolicies.networking.k8s.io")
                  .message,
              "context \"prod\" (https://10.0.0.1:6443): 403 Forbidden: the user cannot list networkpolicies at "
              "the "
              "cluster scope (needs get, list and watch on networkpolicies.networking.k8s.io); the server said: "
              "networkpolicies.networking.k8s.io is forbidden: User \"bob\" cannot list resource "
              "\"networkpolicies\"");

    HttpResponse busy;
    busy.status = 503;
    busy.body = "upstream connect error\nmore";
    EXPECT_EQ(client.error_for(busy).message,
              "context \"prod\" (https://10.0.0.1:6443): 503 Service Unavailable: upstream connect error");

    ClientConfig certs = cfg;
    certs.token.clear();
    certs.client_certificate_pem = "C";
    certs.client_key_pem = "K";
    ApiClient cert_client(certs);
    EXPECT_NE(cert_client.error_for(unauthorized).message.find("the client certificate was rejected"),
              std::string::npos);
}

TEST(ApiErrors, ConnectionRefused) {
    ClientConfig cfg;
    cfg.context = "local";
    cfg.server = "https://127.0.0.1:1";
    ApiClient client(cfg);
    auto r = client.get("/api/v1/pods");
    EXPECT_EQ(r.status, 0);
    EXPECT_TRUE(r.retryable);
    EXPECT_EQ(client.error_for(r).message,
              "context \"local\" (https://127.0.0.1:1): cannot connect: Connection refused");
}

TEST(ApiClient, CancellationStopsARequestPromptly) {
    ClientConfig cfg;
    cfg.context = "blackhole";
    // A non-routable address: the connect would hang until its timeout.
    cfg.server = "https://10.255.255.1:6443";
    ApiClient client(cfg);
    Cancellation cancel;
    std::thread canceller([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        cancel.cancel();
    });
    const auto start = std::chrono::steady_clock::now();
    auto r = client.get("/api/v1/pods", &cancel);
    const auto took = std::chrono::steady_clock::now() - start;
    canceller.join();
    EXPECT_TRUE(r.cancelled || r.status == 0);
    EXPECT_LT(took, std::chrono::seconds(2));
}

}  // namespace
}  // namespace npt::k8s
