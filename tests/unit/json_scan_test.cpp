// The JSON value scanner the --state loader splits kubectl lists with (state/json_scan.hpp), on the cases its 64-byte
// blocks make hard: brackets and quotes inside strings, escapes, and a string or an escape that crosses a block.
#include "state/json_scan.hpp"

#include <gtest/gtest.h>

#include <string>

namespace npt::json_scan {
namespace {

constexpr size_t kNpos = std::string_view::npos;

TEST(JsonScan, ContainersEndAtTheirMatchingBracket) {
    EXPECT_EQ(value_end(R"({"a":[1,2,{"b":3}]} ,)", 0), 19u);
    EXPECT_EQ(value_end(R"([[],[[]]],)", 0), 9u);
    EXPECT_EQ(value_end(R"({"a":1)", 0), kNpos);
    EXPECT_EQ(value_end(R"(x{"a":1})", 1), 8u);
}

TEST(JsonScan, BracketsAndQuotesInStringsDoNotCount) {
    EXPECT_EQ(value_end(R"({"a":"}]{[","b":"\"}"})", 0), 22u);
    EXPECT_EQ(value_end(R"("a\"b\\"c)", 0), 8u);
    EXPECT_EQ(value_end(R"("open)", 0), kNpos);
}

TEST(JsonScan, ScalarsEndAtASeparator) {
    EXPECT_EQ(value_end("123,", 0), 3u);
    EXPECT_EQ(value_end("true]", 0), 4u);
    EXPECT_EQ(value_end("null", 0), kNpos);
    EXPECT_EQ(skip_space(" \t\r\n x", 0), 5u);
    EXPECT_EQ(skip_space("   ", 0), 3u);
}

// Every split of a long object across the scanner's 64-byte blocks: the string holding a bracket, an escaped quote
// and an escaped backslash starts at each offset from 0 to 130, so each special byte lands on every block boundary.
TEST(JsonScan, StringsAndEscapesAcrossBlocks) {
    for (size_t pad = 0; pad <= 130; ++pad) {
        const std::string inner = std::string(pad, 'x') + R"(}\"]\\)";
        const std::string value = R"({"k":")" + inner + R"(","n":[{}]})";
        const std::string text = value + R"(,{"next":1})";
        EXPECT_EQ(value_end(text, 0), value.size()) << pad;
        EXPECT_EQ(container_end(text, 0), value.size()) << pad;
        EXPECT_EQ(string_end(text, 5), 5 + 2 + inner.size()) << pad;
    }
}

}  // namespace
}  // namespace npt::json_scan
