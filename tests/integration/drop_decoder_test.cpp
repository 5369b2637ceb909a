// The drop decoder on records a real kernel wrote (no root, no BPF): tests/fixtures/capture/recorded-drops.txt
// holds ring-buffer records of the capture's network-namespace scenarios with what decoding them read from the
// system then (reason values, kernel symbols, the namespaces' tables and interface names; format in the file).
// The expectations are what each scenario fixes by construction (the rule it installed, the packets it sent),
// the same the root test asserts on the live capture.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "drop_decoder.hpp"

#ifndef NPT_RECORDED_DROPS
#error "NPT_RECORDED_DROPS must name tests/fixtures/capture/recorded-drops.txt"
#endif

namespace npt::capture {
namespace {

struct RecordedNetns {
    std::optional<bool> legacy;
    std::optional<bool> nftables;
    std::map<uint32_t, std::string> interfaces;
};

// Answers what was recorded with the record being decoded (inode numbers are reused between the scenarios'
// namespaces, so the answers go with the record, not with its inode); counts the questions.
class RecordedNetnsQueries final : public NetnsQueries {
  public:
    RecordedNetns current;
    int questions = 0;

    std::optional<bool> has_iptables_legacy_tables(uint32_t) override {
        ++questions;
        return current.legacy;
    }
    std::optional<bool> has_nftables_tables(uint32_t) override {
        ++questions;
        return current.nftables;
    }
    std::string interface_name(uint32_t, uint32_t ifindex) override {
        auto i = current.interfaces.find(ifindex);
        return i == current.interfaces.end() ? "" : i->second;
    }
};

struct RecordedDrop {
    std::string name;
    npt_drop_event record{};
    RecordedNetns netns;  // unknown unless recorded
    std::map<std::string, std::string> expect;
};

struct Recording {
    uint32_t own_netns = 0;
    std::vector<std::pair<std::string, uint32_t>> reasons;
    std::vector<KernelSymbol> symbols;
    std::vector<RecordedDrop> drops;
    std::string error;  // the fixture could not be read
};

std::optional<bool> tri_state(const std::string& v) {
    if (v == "-1") {
        return std::nullopt;
    }
    return v == "1";
}

bool parse_hex(const std::string& hex, npt_drop_event& out) {
    if (hex.size() != 2 * sizeof(out)) {
        return false;
    }
    auto* bytes = reinterpret_cast<unsigned char*>(&out);
    for (size_t i = 0; i < sizeof(out); ++i) {
        unsigned v = 0;
        if (std::sscanf(hex.c_str() + 2 * i, "%2x", &v) != 1) {
            return false;
        }
        bytes[i] = static_cast<unsigned char>(v);
    }
    return true;
}

const Recording& recording() {
    static const Recording r = [] {
        Recording rec;
        std::ifstream in(NPT_RECORDED_DROPS);
        if (!in) {
            rec.error = std::string("cannot read ") + NPT_RECORDED_DROPS;
            return rec;
        }
        std::string line;
        int n = 0;
        while (std::getline(in, line)) {
            ++n;
            if (line.empty() || line[0] == '#') {
                continue;
            }
            std::istringstream ss(line);
            std::string word;
            ss >> word;
            const auto bad = [&] { rec.error = "line " + std::to_string(n) + ": " + line; };
            if (word == "own-netns") {
                ss >> rec.own_netns;
            } else if (word == "reason") {
                std::string name;
                uint32_t value = 0;
                if (!(ss >> name >> value)) {
                    bad();
                    break;
                }
                rec.reasons.emplace_back(name, value);
            } else if (word == "symbol") {
                std::string addr, name;
                if (!(ss >> addr >> name)) {
                    bad();
                    break;
                }
                rec.symbols.push_back({std::stoull(addr, nullptr, 16), name});
            } else if (word == "netns" && !rec.drops.empty()) {
                RecordedNetns& ns = rec.drops.back().netns;
                while (ss >> word) {
                    const auto eq = word.find('=');
                    if (eq == std::string::npos) {
                        bad();
                        break;
                    }
                    const std::string k = word.substr(0, eq), v = word.substr(eq + 1);
                    if (k == "legacy") {
                        ns.legacy = tri_state(v);
                    } else if (k == "nftables") {
                        ns.nftables = tri_state(v);
                    } else if (k.rfind("if", 0) == 0) {
                        ns.interfaces[std::stoul(k.substr(2))] = v;
                    }
                }
            } else if (word == "drop") {
                rec.drops.emplace_back();
                ss >> rec.drops.back().name;
            } else if (word == "record" && !rec.drops.empty()) {
                std::string hex;
                if (!(ss >> hex) || !parse_hex(hex, rec.drops.back().record)) {
                    bad();
                    break;
                }
            } else if (word == "expect" && !rec.drops.empty()) {
                while (ss >> word) {
                    const auto eq = word.find('=');
                    if (eq == std::string::npos) {
                        bad();
                        break;
                    }
                    rec.drops.back().expect[word.substr(0, eq)] = word.substr(eq + 1);
                }
            } else {
                bad();
                break;
            }
        }
        if (rec.error.empty() && rec.drops.empty()) {
            rec.error = std::string("no drops in ") + NPT_RECORDED_DROPS;
        }
        return rec;
    }();
    return r;
}

// The value of an expectable field of a decoded event, as the fixture writes it.
std::string field(const DropEvent& e, const std::string& name) {
    if (name == "kind") return e.kind == EventKind::kNewFlow ? "new" : "resumed";
    if (name == "src") return e.src ? e.src->str() : "none";
    if (name == "dst") return e.dst ? e.dst->str() : "none";
    if (name == "protocol") return e.protocol_name;
    if (name == "sport") return std::to_string(e.sport);
    if (name == "dport") return std::to_string(e.dport);
    if (name == "reason") return e.reason;
    if (name == "enforcement") return e.enforcement;
    if (name == "backend") return e.backend;
    if (name == "ct_state") return e.ct_state;
    if (name == "tcp_flags") return std::to_string(e.tcp_flags);
    if (name == "icmp") return std::to_string(e.icmp_type) + "/" + std::to_string(e.icmp_code);
    if (name == "original_dst") return e.original_dst ? e.original_dst->to_string() : "none";
    if (name == "ifname") return e.ifname.empty() ? "none" : e.ifname;
    if (name == "netns_from_socket") return e.netns_from_socket ? "yes" : "no";
    if (name == "count") return std::to_string(e.count);
    if (name == "location_function") {
        return e.location_symbol.substr(0, e.location_symbol.find('+'));
    }
    if (name == "stack_has") return "";  // checked separately
    return "<unknown field " + name + ">";
}

class DropDecoderTest : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_EQ(recording().error, "");
        reasons_ = ReasonTable::from_enumerators(recording().reasons, {});
        symbols_ = KernelSymbolizer(recording().symbols);
    }
    // A decoder for `drop`: its namespace answers what was recorded with it.
    DropDecoder decoder(const RecordedDrop& drop, bool with_symbols = true) {
        netns_.current = drop.netns;
        netns_.questions = 0;
        DropDecoder::Sources s;
        s.reasons = &reasons_;
        s.symbols = with_symbols ? &symbols_ : nullptr;
        s.netns = &netns_;
        s.own_netns_inum = recording().own_netns;
        return DropDecoder(s);
    }

    ReasonTable reasons_;
    KernelSymbolizer symbols_;
    RecordedNetnsQueries netns_;
};

TEST_F(DropDecoderTest, EveryRecordedDropDecodesToWhatItsScenarioFixes) {
    for (const auto& drop : recording().drops) {
        SCOPED_TRACE(drop.name);
        DropDecoder d = decoder(drop);
        const DropEvent e = d.decode(drop.record);
        ASSERT_FALSE(drop.expect.empty());
        for (const auto& [name, want] : drop.expect) {
            if (name == "stack_has") {
                bool found = false;
                for (const auto& frame : e.stack) {
                    found |= frame.rfind(want + "+", 0) == 0;
                }
                EXPECT_TRUE(found) << "no frame in " << want << " on the decoded stack";
                continue;
            }
            EXPECT_EQ(field(e, name), want) << name;
        }
        // The stack starts at the drop site.
        if (e.kind == EventKind::kNewFlow && !e.stack.empty()) {
            EXPECT_EQ(e.stack.front(), e.location_symbol);
        }
    }
}

TEST_F(DropDecoderTest, FlowsDroppedAtTheSameSiteShareOneAttribution) {
    const RecordedDrop* first = nullptr;
    for (const auto& drop : recording().drops) {
        if (drop.expect.count("backend") && drop.expect.at("backend") == "nftables" && drop.record.stack_len > 0) {
            first = &drop;
            break;
        }
    }
    ASSERT_NE(first, nullptr) << "the recording has no nftables drop with a stack";
    DropDecoder d = decoder(*first);
    const DropEvent a = d.decode(first->record);
    const int asked = netns_.questions;
    npt_drop_event other = first->record;
    other.key.dport = static_cast<uint16_t>(other.key.dport + 1);  // another flow, same drop site
    other.key.saddr[3] ^= 1;
    const DropEvent b = d.decode(other);
    EXPECT_EQ(netns_.questions, asked) << "the second flow's attribution was worked out again";
    EXPECT_EQ(b.enforcement, a.enforcement);
    EXPECT_EQ(b.backend, a.backend);
    EXPECT_EQ(b.stack, a.stack);
    EXPECT_EQ(b.dport, a.dport + 1);
}

TEST_F(DropDecoderTest, ResumedFlowKeepsItsAttributionWithoutAStack) {
    const RecordedDrop& drop = recording().drops.front();
    DropDecoder d = decoder(drop);
    const DropEvent first = d.decode(drop.record);
    npt_drop_event resumed = drop.record;
    resumed.kind = NPT_EVENT_RESUMED;
    resumed.stack_len = 0;
    std::fill(std::begin(resumed.stack), std::end(resumed.stack), 0);
    const DropEvent e = d.decode(resumed);
    EXPECT_EQ(e.kind, EventKind::kResumed);
    EXPECT_TRUE(e.stack.empty());
    EXPECT_EQ(e.enforcement, first.enforcement);
    EXPECT_EQ(e.backend, first.backend);
    EXPECT_EQ(e.location_symbol, first.location_symbol);
}

TEST_F(DropDecoderTest, WithoutKernelSymbolsTheLocationIsAnAddress) {
    const RecordedDrop& drop = recording().drops.front();
    DropDecoder d = decoder(drop, false);
    const DropEvent e = d.decode(drop.record);
    char want[32];
    std::snprintf(want, sizeof(want), "0x%llx", static_cast<unsigned long long>(drop.record.key.location));
    EXPECT_EQ(e.location_symbol, want);
    EXPECT_TRUE(e.stack.empty());
    EXPECT_EQ(e.reason, drop.expect.at("reason"));  // names come from BTF, not from kallsyms
}

TEST_F(DropDecoderTest, RecoveredFlowIsANewFlowFromItsMapEntry) {
    const RecordedDrop& drop = recording().drops.front();
    npt_flow_value v{};
    v.count = 42;
    v.first_ns = drop.record.first_ns;
    v.last_ns = drop.record.ts_ns;
    v.last_sport = 4242;
    v.ct_state = NPT_CT_ESTABLISHED;
    const npt_drop_event rec = DropDecoder::record_of(drop.record.key, v);
    EXPECT_EQ(rec.kind, NPT_EVENT_NEW_FLOW);
    EXPECT_EQ(rec.stack_len, 0u);
    DropDecoder d = decoder(drop);
    const DropEvent e = d.decode(rec);
    EXPECT_EQ(e.count, 42u);
    EXPECT_EQ(e.sport, 4242);
    EXPECT_EQ(e.ct_state, "established");
    EXPECT_FALSE(e.original_dst.has_value());
    EXPECT_EQ(e.reason, drop.expect.at("reason"));
    // No stack: the drop site is the only frame. It names the backend (nft_do_chain), not the hook, which only
    // the callers on the lost stack told.
    ASSERT_EQ(e.stack.size(), 1u);
    EXPECT_EQ(e.stack.front(), e.location_symbol);
    EXPECT_EQ(e.backend, drop.expect.at("backend"));
    EXPECT_EQ(e.enforcement, "netfilter/unknown");
}

}  // namespace
}  // namespace npt::capture
