// `explain --probes` writes its results with a streaming JSON writer; its contract is the DOM's dump
// (explanation_json, nlohmann's compact dump with invalid UTF-8 replaced). Two checks:
// - the writer against the DOM for the same Explanation objects: every verdict, hint and field kind over the
//   example clusters, a dual-stack one and a generated one, with strings that need escaping or are not UTF-8;
// - the binary against a reference path (the DOM renderer over the same parse, line by line) on probe files
//   with every kind of line, valid or not, byte for byte, with -o json, text and --fix.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "../bench/cluster_generator.hpp"
#include "../bench/state_file.hpp"
#include "live/cluster_source.hpp"
#include "cli/probe_line.hpp"
#include "output/json_output.hpp"
#include "common/json_writer.hpp"
#include "output/text_output.hpp"
#include "policy/explainer.hpp"
#include "policy/fix.hpp"
#include "state/state_loader.hpp"

using namespace npt;

namespace {

const std::string kExamples = NPT_EXAMPLES_DIR;
const std::string kFixtures = NPT_FIXTURES_DIR;

std::string dom_line(const Explanation& e) {
    return explanation_json(e).dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
}

std::string stream_line(const Explanation& e) {
    std::string out;
    append_explanation_json_line(out, e);
    return out;
}

std::filesystem::path temp_dir() {
    static const auto dir = [] {
        auto d = std::filesystem::temp_directory_path() / ("npt-probes-test-" + std::to_string(::getpid()));
        std::filesystem::create_directories(d);
        return d;
    }();
    return dir;
}

// A generated cluster (namespaces of workloads, default-deny and allow policies) as a state file.
std::string generated_state() {
    static const std::string path = [] {
        bench::ClusterShape shape;
        shape.namespaces = 8;
        shape.pods = 240;
        shape.policies = 40;
        shape.pods_per_workload = 6;
        return bench::write_state(bench::generate_cluster(shape), temp_dir() / "generated.json");
    }();
    return path;
}

struct StateCase {
    std::string name;
    std::vector<std::string> files;
};

std::vector<StateCase> state_cases() {
    return {{"runbook", {kExamples + "/runbook-cluster.yaml"}},
            {"runbook+cluster-policies", {kExamples + "/runbook-cluster.yaml", kExamples + "/cluster-policies.yaml"}},
            {"cluster-policy-fixture", {kFixtures + "/cluster-policy/cluster.yaml"}},
            {"dual-stack", {kFixtures + "/probes/dual-stack.yaml"}},
            {"generated", {generated_state()}}};
}

std::string probe(const std::string& from, const std::string& to, const std::string& port_json,
                  const std::string& extra = "") {
    return fmt::format(R"({{"from": {}, "to": {}, "port": {}{}}})", Json(from).dump(), Json(to).dump(), port_json,
                       extra);
}

// Every pair of (a sample of) pods by name and by each IP, on the pods' declared ports and common ones; each
// Service's IPs on its ports; addresses outside the cluster; and lines that fail in each way.
std::string probe_lines(const std::vector<std::string>& files) {
    auto objects = load_state_files(files);
    EXPECT_TRUE(static_cast<bool>(objects));
    std::vector<const PodInfo*> pods;
    const size_t step = std::max<size_t>(1, objects->pods.size() / 10);
    for (size_t i = 0; i < objects->pods.size(); i += step) pods.push_back(&objects->pods[i]);
    std::vector<std::string> lines;
    const std::vector<std::string> common = {"53", "\"53/UDP\"", "80", "443", "5432", "8080", "9090", "8050", "65535"};
    for (const auto* a : pods) {
        for (const auto* b : pods) {
            std::vector<std::string> ports = common;
            for (const auto& cp : b->ports)
                ports.push_back(fmt::format("{}, \"protocol\": \"{}\"", cp.port, protocol_name(cp.protocol)));
            std::vector<std::string> tos = {b->ns + "/" + b->name};
            for (const auto& ip : b->ips) tos.push_back(ip.str());
            for (size_t t = 0; t < tos.size(); ++t)
                for (size_t p = 0; p < ports.size(); p += t == 0 ? 1 : 3)
                    lines.push_back(probe(a->ns + "/" + a->name, tos[t], ports[p]));
            if (!a->ips.empty()) lines.push_back(probe(a->ips.back().str(), tos[0], "8080"));
        }
        for (const auto& svc : objects->services) {
            std::vector<IpAddr> ips = svc.cluster_ips;
            ips.insert(ips.end(), svc.external_ips.begin(), svc.external_ips.end());
            for (const auto& ip : ips) {
                for (const auto& sp : svc.ports)
                    lines.push_back(probe(a->ns + "/" + a->name, ip.str(), std::to_string(sp.port),
                                          fmt::format(", \"protocol\": \"{}\"", protocol_name(sp.protocol))));
                lines.push_back(probe(a->ns + "/" + a->name, ip.str(), "\"1/SCTP\""));
            }
        }
        for (const char* ext : {"93.184.216.34", "10.0.40.50", "10.0.40.11", "10.43.0.1", "2001:db8::1", "fd00:43::1"})
            lines.push_back(probe(a->ns + "/" + a->name, ext, "443"));
    }
    const std::string some = pods.empty() ? "a/b" : pods.front()->ns + "/" + pods.front()->name;
    const std::vector<std::string> bad = {
        "not json",
        "[1, 2]",
        "{}",
        "",
        " \t ",
        R"({"from": 7, "to": "a/b", "port": 80})",
        R"({"from": {"x": [1, "\u00e9", null, true, -2.5e3]}, "to": 5, "port": 80})",
        R"({"from": "a/b", "to": "c/d"})",
        probe(some, some, "true"),
        probe(some, some, "80.5"),
        probe(some, some, "0"),
        probe(some, some, "-1"),
        probe(some, some, "70000"),
        probe(some, some, "\"http\""),
        probe(some, some, "\"80/ICMP\""),
        probe(some, some, "\"\""),
        probe(some, some, "80", ", \"protocol\": 6"),
        probe(some, some, "80", ", \"protocol\": \"GRE\""),
        probe(some, some, "80", ", \"protocol\": \"udp\""),
        probe("shop/ghost", some, "80"),
        probe("nowhere/x", some, "80"),
        probe(some, "nowhere/x", "80"),
        probe("sh\u00f6p/caf\u00e9-\u65e5\u672c", some, "80"),
        probe("a\x01"
              "b\"\\/c\x1f\x7f\t",
              some, "80"),
        probe("999.1.1.1", "10.1.2.3", "80"),
        probe("10.1.2.3", "::1", "80"),
        probe("10.1.2.3", "fd00::5", "443"),
        probe("bare-name", some, "80"),
        "{\"from\": \"\xff\xfe\", \"to\": \"a/b\", \"port\": 80}",
        probe(some, some, "8080") + "\r",
        R"({"from": "a/b", "from": "c/d", "to": "x/y", "port": 1, "unknown": [1]})",
    };
    lines.insert(lines.end(), bad.begin(), bad.end());
    std::string text;
    for (const auto& l : lines) text += l + "\n";
    return text;
}

struct Run {
    int status = -1;
    std::string out;
};

Run run_binary(const std::vector<std::string>& args) {
    std::string cmd = NPT_BINARY;
    for (const auto& a : args) cmd += " '" + a + "'";
    cmd += " 2>/dev/null";
    Run r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) return r;
    char buf[65536];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
    const int rc = ::pclose(p);
    r.status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    return r;
}

struct Variant {
    std::string output = "json";
    bool fix = false;
    cli::ProbeDefaults defaults;
};

// The batch as the DOM renderer writes it: one line per non-blank input line, the error object built as a
// DOM.
Run reference(const ClusterState& state, const std::string& lines, const Variant& v) {
    Run r;
    bool any_error = false, any_denied = false;
    std::istringstream in(lines);
    std::ostringstream out;
    size_t lineno = 0;
    for (std::string line; std::getline(in, line);) {
        ++lineno;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        auto fail = [&](const Json& from, const std::string& msg) {
            any_error = true;
            Json j;
            j["from"] = from;
            j["error"] = fmt::format("line {}: {}", lineno, msg);
            write_json_line(out, j);
        };
        auto p = cli::parse_probe_line_dom(line, v.defaults);
        if (!p.query) {
            fail(p.from, p.error);
            continue;
        }
        auto e = explain_query(state, *p.query);
        if (!e) {
            fail(p.from, e.error().message);
            continue;
        }
        any_denied = any_denied || !e->allowed();
        if (v.fix) add_fixes(state, *e);
        if (v.output == "json") {
            write_json_line(out, explanation_json(*e));
        } else if (v.output == "yaml") {
            write_fixes_yaml(out, *e);
        } else {
            write_explanation_text(out, *e);
            out << '\n';
        }
    }
    r.status = any_error ? 2 : any_denied ? 1 : 0;
    r.out = out.str();
    return r;
}

std::shared_ptr<const ClusterState> load(const std::vector<std::string>& files) {
    std::ostringstream err;
    auto s = live::load_cluster_state(files, "", "", err);
    EXPECT_TRUE(static_cast<bool>(s)) << err.str();
    return s ? *s : nullptr;
}

void expect_same_lines(const std::string& want, const std::string& got, const std::string& what) {
    if (want == got) return;
    std::istringstream a(want), b(got);
    std::string la, lb;
    for (size_t n = 1;; ++n) {
        const bool ha = static_cast<bool>(std::getline(a, la)), hb = static_cast<bool>(std::getline(b, lb));
        if (!ha && !hb) break;
        if (la != lb || ha != hb) {
            ADD_FAILURE() << what << ": line " << n << " differs\nwant: " << la << "\ngot:  " << lb;
            return;
        }
    }
    ADD_FAILURE() << what << ": outputs differ (" << want.size() << " vs " << got.size() << " bytes)";
}

// Strings that take every escaping path: quotes, backslashes, control characters, DEL, UTF-8 of 2, 3 and 4
// bytes, and invalid UTF-8 (a lone continuation byte, a truncated sequence, an overlong encoding, a
// surrogate, bytes that can never appear, a truncated sequence at the end).
std::vector<std::string> awkward_strings() {
    std::vector<std::string> s = {"",
                                  "plain",
                                  "quote\" and back\\slash",
                                  std::string("nul\0inside", 10),
                                  "\x01\x02\x08\x09\x0a\x0b\x0c\x0d\x1e\x1f\x7f",
                                  "caf\xc3\xa9 \xe6\x97\xa5 \xf0\x9f\x98\x80",
                                  "lone \x80 continuation",
                                  "truncated \xe6\x97 sequence",
                                  "overlong \xc0\xaf slash",
                                  "surrogate \xed\xa0\x80 half",
                                  "never \xfe\xff bytes",
                                  "ends truncated \xf0\x9f\x98"};
    std::mt19937_64 rng(19);
    for (int i = 0; i < 2000; ++i) {
        std::string r(rng() % 12, '\0');
        for (auto& c : r) c = static_cast<char>(rng() % 4 == 0 ? 0x80 + rng() % 0x80 : rng() % 0x80);
        s.push_back(std::move(r));
    }
    return s;
}

// A miss whose words carry awkward strings: its names and labels for a label miss, domain names otherwise.
template <typename Pick>
void awkward_miss(Miss& m, Pick&& pick) {
    if (auto* l = std::get_if<LabelMiss>(&m.detail)) {
        l->key = pick();
        l->name = pick();
        l->value = pick();
        l->labels.emplace_back(pick(), pick());
        return;
    }
    m.detail = DomainNameMiss{{pick(), pick()}, IpAddr{}};
}

// The state and probe files written for the binary go with the test process.
struct RemoveTempDir : ::testing::Environment {
    void TearDown() override {
        std::error_code ec;
        std::filesystem::remove_all(temp_dir(), ec);
    }
};
[[maybe_unused]] auto* const kRemoveTempDir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

}  // namespace

TEST(JsonWriter, StringsAreEscapedAsTheDomDumpsThem) {
    for (const auto& s : awkward_strings()) {
        std::string got;
        JsonWriter::append_string(got, s);
        EXPECT_EQ(got, Json(s).dump(-1, ' ', false, Json::error_handler_t::replace))
            << Json(s).dump(-1, ' ', true, Json::error_handler_t::replace);
    }
}

// One byte that needs escaping (or one beside those that do not) at every position of strings of every length
// up to a few blocks: the writer checks strings a block or a word at a time and its last block overlaps the
// one before it, so a byte missed at a block's edge would be copied as it is.
TEST(JsonWriter, EveryPositionOfEveryLengthIsChecked) {
    const std::vector<std::string> bytes = {"\"", "\\", "\x01", "\x1f", "\x80", "\xc3\xa9", "\xff",
                                            " ",  "!",  "#",    "[",    "]",    "\x7f",     "~"};
    size_t compared = 0;
    for (size_t len = 1; len <= 48; ++len) {
        for (size_t at = 0; at < len; ++at) {
            for (const auto& b : bytes) {
                std::string s(len, 'x');
                s.replace(at, 1, b);
                std::string got = "prefix ";
                JsonWriter::append_string(got, s);
                ASSERT_EQ(got, "prefix " + Json(s).dump(-1, ' ', false, Json::error_handler_t::replace))
                    << "length " << len << ", byte " << Json(b).dump(-1, ' ', true, Json::error_handler_t::replace)
                    << " at " << at;
                ++compared;
            }
        }
    }
    EXPECT_EQ(compared, 14u * 48 * 49 / 2);
}

// The plain prefix ends exactly at the first byte a JSON string cannot hold as is, wherever it is and whatever
// follows it (a second such byte later in the same block must not move it), at every length around the 8- and
// 16-byte steps. The probe-line reader takes a string's end from it.
TEST(JsonWriter, ThePlainPrefixEndsAtTheFirstByteNeedingCare) {
    const std::vector<char> stops = {'"', '\\', '\x01', '\x1f', '\x80', '\xff'};
    size_t checked = 0;
    for (size_t len = 0; len <= 40; ++len) {
        const std::string plain(len, 'x');
        ASSERT_EQ(json_plain_prefix(plain), len) << "length " << len;
        for (size_t at = 0; at < len; ++at) {
            for (const char stop : stops) {
                std::string s = plain;
                s[at] = stop;
                if (at + 1 < len) s[len - 1] = '"';  // a later stop in the same or a later block
                ASSERT_EQ(json_plain_prefix(s), at) << "length " << len << ", byte " << int(stop) << " at " << at;
                ++checked;
            }
        }
    }
    EXPECT_EQ(checked, 6u * 40 * 41 / 2);
}

// Between top-level values the string is the caller's: what it appends stays, in order, and the writer's next
// value goes after it.
TEST(JsonWriter, TheCallerMayAppendBetweenValues) {
    std::string out = "head ";
    {
        JsonWriter w(out);
        w.begin_array();
        w.string(std::string(3000, 'a'));  // more than the room the writer takes at a time
        w.end_array();
        EXPECT_EQ(out, "head [\"" + std::string(3000, 'a') + "\"]");
        out += '\n';
        w.number(7);
        out += '\n';
        w.begin_object();
        w.member("k", "v");
        w.end_object();
    }
    EXPECT_EQ(out, "head [\"" + std::string(3000, 'a') + "\"]\n7\n{\"k\":\"v\"}");
}

// Member names: a renderer's literal (short or past the writer's fast path), and a name from data that needs
// escaping.
TEST(JsonWriter, NamesAreTheDomDump) {
    std::string out;
    JsonWriter w(out);
    w.begin_object();
    w.member("a", 1);
    w.member("a_literal_name_longer_than_the_sixty_bytes_the_writer_copies_on_its_stack", 2);
    w.member(std::string_view("quote\" and \\ \x01"), 3);
    w.end_object();
    Json j;
    j["a"] = 1;
    j["a_literal_name_longer_than_the_sixty_bytes_the_writer_copies_on_its_stack"] = 2;
    j["quote\" and \\ \x01"] = 3;
    EXPECT_EQ(out, j.dump(-1, ' ', false, Json::error_handler_t::replace));
}

TEST(JsonWriter, NumbersAndNestingAreTheDomDump) {
    std::string out;
    JsonWriter w(out);
    w.begin_object();
    w.member("a", int64_t{-9223372036854775807 - 1});
    w.member("b", uint64_t{18446744073709551615u});
    w.member("c", uint16_t{0});
    w.key("d");
    w.begin_array();
    w.begin_array();
    w.end_array();
    w.begin_object();
    w.end_object();
    w.null();
    w.boolean(false);
    w.end_array();
    w.member("e", std::vector<std::string>{});
    w.end_object();
    Json j;
    j["a"] = int64_t{-9223372036854775807 - 1};
    j["b"] = uint64_t{18446744073709551615u};
    j["c"] = uint16_t{0};
    j["d"] = Json::array({Json::array(), Json::object(), nullptr, false});
    j["e"] = std::vector<std::string>{};
    EXPECT_EQ(out, j.dump(-1, ' ', false, Json::error_handler_t::replace));
}

// The streaming renderer writes what the DOM renderer dumps, for every explanation of every probe over the
// clusters, and again with every string field of those explanations made awkward.
TEST(ProbesOutput, StreamingRendererMatchesTheDom) {
    const auto strings = awkward_strings();
    size_t compared = 0, k = 0;
    for (const auto& sc : state_cases()) {
        auto state = load(sc.files);
        ASSERT_TRUE(state);
        std::istringstream in(probe_lines(sc.files));
        for (std::string line; std::getline(in, line);) {
            auto p = cli::parse_probe_line(line, {});
            if (!p.query) continue;
            auto e = explain_query(*state, *p.query);
            if (!e) continue;
            ASSERT_EQ(stream_line(*e), dom_line(*e)) << sc.name << ": " << line;
            ++compared;
            // The same explanation with awkward strings wherever a string is rendered.
            auto pick = [&]() -> const std::string& { return strings[k++ % strings.size()]; };
            Explanation m = *e;
            m.from = pick();
            m.verdict = pick();
            m.src.pod = pick();
            m.dst.node = pick();
            m.dst.service = pick();
            m.dst.host_network = !m.dst.host_network;
            m.notes.push_back(Note{Exemption::LocalNode, Direction::Ingress, pick(), m.src.ip});
            for (auto* side : {&m.egress, &m.ingress}) {
                side->policies.push_back(pick());
                side->allowed_by.push_back(pick());
                side->cluster_policies.push_back(pick());
                side->passed_by.push_back(ClusterRuleRef{pick(), 3, pick(), -7});
                side->decided_by.rule = ClusterRuleRef{pick(), -1, std::nullopt, 12};
                side->decided_by.action = RuleAction::Pass;
                side->exemption = static_cast<Exemption>(k % 5);
                for (auto* diags : {&side->diagnoses, &side->cluster_diagnoses}) {
                    for (auto& d : *diags) {
                        d.policy = pick();
                        d.summary.pod = pick();
                        if (d.closest) {
                            d.closest->rule_name = pick();
                            d.closest->action = RuleAction::Accept;
                            for (auto& miss : d.closest->misses) awkward_miss(miss, pick);
                            Miss extra{MissKind::DomainName, true, false, Direction::Egress, {}};
                            awkward_miss(extra, pick);
                            d.closest->misses.push_back(extra);
                        }
                    }
                    diags->push_back(PolicyDiagnosis{
                        pick(), DecidingTier::Baseline, false,
                        PolicySummary{PolicySummary::Kind::NoRules, Direction::Egress, pick()}, std::nullopt});
                }
            }
            for (auto& h : m.hints) {
                h.message = pick();
                h.policy = pick();
                if (h.miss) awkward_miss(*h.miss, pick);
            }
            m.hints.push_back(Hint{pick(), Direction::Egress, std::nullopt, pick()});
            {
                Hint d{pick(), Direction::Ingress, pick(), pick()};
                d.detail = DefaultDenyHint{pick(), {pick(), pick()}};
                m.hints.push_back(d);
                d.detail = ServiceDnatHint{m.src.ip, 80, pick(), {{m.src.ip, 8080}}, {pick()}};
                m.hints.push_back(d);
            }
            for (auto& s : m.service) {
                s.name = pick();
                s.port_name = pick();
            }
            ASSERT_EQ(stream_line(m), dom_line(m)) << sc.name << ": " << line;
        }
    }
    EXPECT_GT(compared, 2000u);
}

TEST(ProbesOutput, FixesAreTheDomDump) {
    auto state = load({kExamples + "/runbook-cluster.yaml"});
    ASSERT_TRUE(state);
    size_t with_fixes = 0;
    std::ifstream in(kExamples + "/runbook-probes.jsonl");
    for (std::string line; std::getline(in, line);) {
        auto p = cli::parse_probe_line(line, {});
        ASSERT_TRUE(p.query) << line;
        auto e = explain_query(*state, *p.query);
        ASSERT_TRUE(static_cast<bool>(e));
        add_fixes(*state, *e);
        with_fixes += e->fixes && !e->fixes->empty();
        EXPECT_EQ(stream_line(*e), dom_line(*e)) << line;
    }
    EXPECT_GT(with_fixes, 0u);
}

// The binary's batch, byte for byte and exit status, against the reference path.
TEST(ProbesOutput, BinaryMatchesTheReferencePath) {
    for (const auto& sc : state_cases()) {
        auto state = load(sc.files);
        ASSERT_TRUE(state);
        const auto lines = probe_lines(sc.files);
        const auto path = temp_dir() / (sc.name + ".jsonl");
        std::ofstream(path) << lines;
        std::vector<std::pair<std::vector<std::string>, Variant>> variants = {{{"-o", "json"}, {}}};
        if (sc.name == "dual-stack") {
            Variant v6;
            v6.defaults.family = 6;
            v6.defaults.ns = "web";
            v6.defaults.protocol = "UDP";
            variants.push_back({{"-o", "json", "--family", "6", "-n", "web", "--protocol", "UDP"}, v6});
        }
        if (sc.name == "runbook") {
            Variant text;
            text.output = "text";
            variants.push_back({{"-o", "text"}, text});
        }
        for (const auto& [extra, v] : variants) {
            std::vector<std::string> args = {"explain", "--probes", path.string()};
            for (const auto& f : sc.files) args.insert(args.end(), {"--state", f});
            args.insert(args.end(), extra.begin(), extra.end());
            const auto got = run_binary(args);
            const auto want = reference(*state, lines, v);
            EXPECT_EQ(got.status, want.status) << sc.name;
            expect_same_lines(want.out, got.out, sc.name);
        }
    }
}

TEST(ProbesOutput, BinaryWithFixesMatchesTheReferencePath) {
    const std::vector<std::string> files = {kExamples + "/runbook-cluster.yaml"};
    auto state = load(files);
    ASSERT_TRUE(state);
    std::ifstream in(kExamples + "/runbook-probes.jsonl");
    const std::string lines((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const std::string output : {"json", "yaml", "text"}) {
        Variant v;
        v.output = output;
        v.fix = true;
        const auto got = run_binary(
            {"explain", "--probes", kExamples + "/runbook-probes.jsonl", "--state", files[0], "--fix", "-o", output});
        const auto want = reference(*state, lines, v);
        EXPECT_EQ(got.status, want.status) << output;
        expect_same_lines(want.out, got.out, "--fix -o " + output);
    }
}

// The plain-line reader answers as the DOM parse does: on the probe files' lines, every prefix of some of
// them, and lines with bytes changed at random.
TEST(ProbeLine, ReaderMatchesTheDomParse) {
    std::vector<std::string> lines;
    for (const auto& sc : state_cases()) {
        std::istringstream in(probe_lines(sc.files));
        for (std::string line; std::getline(in, line);) lines.push_back(line);
    }
    const std::vector<std::string> extra = {
        R"({"from":"a/b","to":"c/d","port":80})",
        R"(  {  "port" : "8080/udp" , "to" : "c/d" , "from" : "a/b" }  )",
        R"({"from":"a/b","to":"c/d","port":080})",
        R"({"from":"a/b","to":"c/d","port":1234567890})",
        R"({"from":"a/b","to":"c/d","port":123456789})",
        R"({"from":"a/b","to":"c/d","port":80,"port":81})",
        R"({"from":"a/b","to":"c/d","port":80,"protocol":"UDP","protocol":"TCP"})",
        R"({"from":"a/b","to":"c/d","port":80,})",
        R"({"from":"a/b","to":"c/d","port":80}x)",
        R"({"from":"a\/b","to":"c/d","port":80})",
        R"({"from":"a/b","to":"c/d","port":8e1})",
        R"({"from":"a/b","to":"c/d","port":null})",
        R"({"from":null,"to":"c/d","port":80})",
        "\xef\xbb\xbf{\"from\":\"a/b\",\"to\":\"c/d\",\"port\":80}",
    };
    lines.insert(lines.end(), extra.begin(), extra.end());
    std::mt19937_64 rng(23);
    constexpr std::string_view kMutations = "{}[]\":,\\ 0a-.e\x01\x80";  // what a byte of a line becomes
    const size_t base = lines.size();
    for (size_t i = 0; i < base; i += 7) {
        const std::string l = lines[i];
        for (size_t cut = 0; cut < l.size(); cut += 3) lines.push_back(l.substr(0, cut));
        for (int k = 0; k < 8 && !l.empty(); ++k) {
            std::string m = l;
            m[rng() % m.size()] = kMutations[rng() % kMutations.size()];
            lines.push_back(m);
        }
    }
    cli::ProbeDefaults ns_udp{"web", "UDP", 6};
    for (const auto& defaults : {cli::ProbeDefaults{}, ns_udp}) {
        for (const auto& line : lines) {
            const auto fast = cli::parse_probe_line(line, defaults);
            const auto dom = cli::parse_probe_line_dom(line, defaults);
            ASSERT_EQ(fast.error, dom.error) << line;
            ASSERT_EQ(fast.from, dom.from) << line;
            ASSERT_EQ(fast.query.has_value(), dom.query.has_value()) << line;
            if (!fast.query) continue;
            EXPECT_EQ(fast.query->from, dom.query->from) << line;
            EXPECT_EQ(fast.query->to, dom.query->to) << line;
            EXPECT_EQ(fast.query->port, dom.query->port) << line;
            EXPECT_EQ(fast.query->protocol, dom.query->protocol) << line;
            EXPECT_EQ(fast.query->family, dom.query->family) << line;
        }
    }
}
