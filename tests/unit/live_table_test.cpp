// The tail's live view: rows fitted to the terminal's width without losing what identifies a drop, and a
// POLICY column that names the policy behind the verdict.
#include "output/live_table.hpp"
#include "output/live_view.hpp"

#include <gtest/gtest.h>

#include <sstream>

#include "policy/explainer.hpp"
#include "state/state_loader.hpp"

namespace {

size_t columns(const std::string& s) {
    size_t n = 0;
    for (const unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

class LiveTable : public ::testing::Test {
  protected:
    void SetUp() override {
        auto objects = npt::load_state_files({std::string(NPT_EXAMPLES_DIR) + "/runbook-cluster.yaml"});
        ASSERT_TRUE(objects.ok());
        state_ = npt::ClusterState::build(std::move(*objects));
        // checkout -> postgres (label drift: denied at ingress), frontend -> the internet (allowed: a stale
        // connection), and a drop seen without a cluster state.
        records_.push_back(record("10.42.0.22", "10.42.0.41", 5432, "new"));
        records_.push_back(record("10.42.0.21", "93.184.216.34", 443, "established"));
        records_.push_back(record("10.42.0.22", "10.42.0.41", 5432, "new"));
        records_.back().attributed = false;
    }

    npt::DropRecord record(const char* src, const char* dst, uint16_t port, const char* ct) {
        npt::DropRecord r;
        r.last_seen = std::chrono::system_clock::from_time_t(1796622783);  // 2026-12-07T05:53:03Z
        r.reason = "NETFILTER_DROP";
        r.enforcement = "netfilter/FORWARD";
        r.ct_state = ct;
        r.protocol_name = "TCP";
        r.count = 1234567;
        r.attributed = true;
        r.explanation = npt::explain_flow(*state_, *npt::IpAddr::parse(src), *npt::IpAddr::parse(dst),
                                          npt::Protocol::TCP, port, src, dst);
        npt::annotate_drop(r);
        return r;
    }

    std::vector<const npt::DropRecord*> rows() const {
        std::vector<const npt::DropRecord*> out;
        for (const auto& r : records_) out.push_back(&r);
        return out;
    }

    std::shared_ptr<const npt::ClusterState> state_;
    std::vector<npt::DropRecord> records_;
};

TEST(ElideMiddle, KeepsBothEndsAndCountsColumnsNotBytes) {
    EXPECT_EQ(npt::elide_middle("payments/checkout-6f8d7c9b5-k8j7h", 40), "payments/checkout-6f8d7c9b5-k8j7h");
    EXPECT_EQ(npt::elide_middle("payments/checkout-6f8d7c9b5-k8j7h", 15), "payment\u20265-k8j7h");
    EXPECT_EQ(columns(npt::elide_middle("payments/checkout-6f8d7c9b5-k8j7h", 15)), 15u);
    EXPECT_EQ(npt::elide_middle("\u00e9t\u00e9-\u00e9t\u00e9", 5),
              "\u00e9t\u2026t\u00e9");  // never splits a character
    EXPECT_EQ(npt::elide_middle("abc", 1), "\u2026");
    EXPECT_EQ(npt::elide_middle("abc", 0), "");
}

TEST_F(LiveTable, PolicyColumnNamesThePolicyBehindTheVerdict) {
    EXPECT_EQ(npt::live_policy_label(records_[0]), "denied databases/allow-app-to-postgres LABEL_MISMATCH");
    EXPECT_EQ(npt::live_policy_label(records_[1]), "allowed NOT_EXPLAINED_BY_POLICY");
    EXPECT_EQ(npt::live_policy_label(records_[2]), "-");
}

TEST_F(LiveTable, EveryRowFitsTheTerminal) {
    for (size_t width : {40u, 60u, 80u, 100u, 120u, 160u, 200u}) {
        SCOPED_TRACE(width);
        const auto lines = npt::render_live_table(rows(), width, false);
        ASSERT_EQ(lines.size(), 4u);
        for (const auto& l : lines) EXPECT_LE(columns(l), width) << l;
        EXPECT_EQ(lines[0].rfind(width >= 120 ? "LAST SEEN" : "SOURCE", 0), 0u) << lines[0];
    }
}

TEST_F(LiveTable, NamesShrinkInTheMiddleAndKeepTheirEnds) {
    const auto lines = npt::render_live_table(rows(), 120, false);
    // The pod's namespace and its unique suffix stay readable; so do the count and the policy's verdict.
    EXPECT_NE(lines[1].find("shop/"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("k8j7h"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("1234567"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("denied "), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("LABEL_MISMATCH"), std::string::npos) << lines[1];
}

TEST_F(LiveTable, NarrowTerminalsLoseTheLeastTellingColumnsFirst) {
    const auto at = [&](size_t w) { return npt::render_live_table(rows(), w, false)[0]; };
    EXPECT_NE(at(200).find("CT"), std::string::npos);
    EXPECT_NE(at(200).find("ENFORCEMENT"), std::string::npos);
    const std::string narrow = at(80);
    EXPECT_EQ(narrow.find("  CT  "), std::string::npos) << narrow;
    EXPECT_NE(narrow.find("SOURCE"), std::string::npos) << narrow;
    EXPECT_NE(narrow.find("DESTINATION"), std::string::npos) << narrow;
    EXPECT_NE(narrow.find("COUNT"), std::string::npos) << narrow;
    EXPECT_NE(narrow.find("POLICY"), std::string::npos) << narrow;
}

TEST_F(LiveTable, WideKeepsEveryValueWhole) {
    const auto lines = npt::render_live_table(rows(), 80, true);
    EXPECT_EQ(lines[0].find("\u2026"), std::string::npos);
    EXPECT_NE(lines[1].find("2026-12-07T05:53:03"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("shop/checkout-6f8d7c9b5-k8j7h"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("denied databases/allow-app-to-postgres LABEL_MISMATCH"), std::string::npos) << lines[1];
    EXPECT_NE(lines[1].find("netfilter/FORWARD"), std::string::npos) << lines[1];
    for (const auto& l : lines) EXPECT_EQ(l.find("\u2026"), std::string::npos) << l;
}

TEST(LiveKeys, DecodesTheTerminalsSequences) {
    using K = npt::LiveKey;
    EXPECT_EQ(npt::decode_live_keys("\x1b[A\x1b[B\r\n"), (std::vector<K>{K::Up, K::Down, K::Enter, K::Enter}));
    EXPECT_EQ(npt::decode_live_keys("\x1bOA\x1bOB"), (std::vector<K>{K::Up, K::Down}));  // application cursor mode
    EXPECT_EQ(npt::decode_live_keys("\x1b[5~\x1b[6~\x1b[H\x1b[F\x1b[1~\x1b[4~"),
              (std::vector<K>{K::PageUp, K::PageDown, K::Home, K::End, K::Home, K::End}));
    EXPECT_EQ(npt::decode_live_keys("kjq"), (std::vector<K>{K::Up, K::Down, K::Close}));
    EXPECT_EQ(npt::decode_live_keys("\x1b"), (std::vector<K>{K::Close}));      // a lone Esc
    EXPECT_EQ(npt::decode_live_keys("\x1b[C\x1b[1;5Dx"), (std::vector<K>{}));  // left/right, Ctrl+left, a letter
    EXPECT_EQ(npt::decode_live_keys("\x1b[1"), (std::vector<K>{}));            // cut short
}

TEST_F(LiveTable, SelectionStaysOnARowAndOpensItsExplanation) {
    npt::LiveView view;
    using K = npt::LiveKey;
    view.on_key(K::Up, 3);
    EXPECT_EQ(view.selected(), 0u);
    for (int i = 0; i < 5; ++i) view.on_key(K::Down, 3);
    EXPECT_EQ(view.selected(), 2u);  // clamped at the last row
    view.on_key(K::Home, 3);
    view.on_key(K::Down, 3);
    EXPECT_EQ(view.selected(), 1u);

    auto lines = view.render(rows(), 160, 20, false);
    ASSERT_EQ(lines.size(), 4u);  // header and three rows
    EXPECT_EQ(lines[2].rfind("\033[7m", 0), 0u) << "the selected row is shown in reverse video";
    EXPECT_EQ(lines[1].find("\033["), std::string::npos);

    view.on_key(K::Enter, 3);
    EXPECT_TRUE(view.detail_open());
    lines = view.render(rows(), 160, 20, false);
    // The pane is the tail's text form of the selected drop, every line of it.
    std::ostringstream text;
    npt::write_drop_text(text, records_[1], true);
    std::string pane;
    for (size_t i = 2; i < lines.size(); ++i) pane += lines[i] + "\n";
    EXPECT_EQ(pane, text.str());
    EXPECT_NE(lines[0].find("flow 2 of 3"), std::string::npos) << lines[0];
    EXPECT_NE(pane.find("NOT_EXPLAINED_BY_POLICY"), std::string::npos) << pane;

    view.on_key(K::Down, 3);  // the next flow's explanation
    lines = view.render(rows(), 160, 20, false);
    EXPECT_NE(lines[0].find("flow 3 of 3"), std::string::npos) << lines[0];
    view.on_key(K::Close, 3);
    EXPECT_FALSE(view.detail_open());
    view.on_key(K::Enter, 0);  // nothing to explain
    EXPECT_FALSE(view.detail_open());
}

TEST_F(LiveTable, RowsScrollToKeepTheSelectionOnScreen) {
    for (int i = 0; i < 20; ++i) records_.push_back(record("10.42.0.22", "10.42.0.41", uint16_t(6000 + i), "new"));
    npt::LiveView view;
    view.on_key(npt::LiveKey::End, records_.size());
    const auto lines = view.render(rows(), 200, 6, false);
    ASSERT_EQ(lines.size(), 6u);  // header and five rows: the last five
    EXPECT_EQ(lines[5].rfind("\033[7m", 0), 0u);
    EXPECT_NE(lines[5].find(":6019"), std::string::npos) << lines[5];
    EXPECT_NE(lines[1].find(":6015"), std::string::npos) << lines[1];
}

}  // namespace
