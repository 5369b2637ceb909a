#include "policy/near_miss.hpp"

#include <gtest/gtest.h>

using npt::edit_distance;
using npt::is_near_key;
using npt::is_near_string;

TEST(NearMiss, EditDistanceIsBounded) {
    EXPECT_EQ(edit_distance("kitten", "sitting", 5), 3u);
    EXPECT_EQ(edit_distance("", "abc", 5), 3u);
    EXPECT_EQ(edit_distance("same", "same", 1), 0u);
    EXPECT_GT(edit_distance("abcdefgh", "zzzzzzzz", 2), 2u);  // gives up past the limit
}

TEST(NearMiss, TyposAndSeparatorsAreNear) {
    EXPECT_TRUE(is_near_string("frontend", "frontnd"));
    EXPECT_TRUE(is_near_string("front-end", "frontend"));
    EXPECT_TRUE(is_near_string("my_app", "my-app"));
    EXPECT_TRUE(is_near_string("Postgres", "postgres"));
    EXPECT_TRUE(is_near_string("backend", "backends"));
    EXPECT_TRUE(is_near_string("postgresql", "postgres-ql"));
}

TEST(NearMiss, PlainlyDifferentValuesAreNot) {
    EXPECT_FALSE(is_near_string("web", "db"));
    EXPECT_FALSE(is_near_string("api", "app"));  // short values: one letter is a different app
    EXPECT_FALSE(is_near_string("frontend", "backend"));
    EXPECT_FALSE(is_near_string("same", "same"));
    EXPECT_FALSE(is_near_string("", "x"));
}

TEST(NearMiss, KeysUnderAPrefixAreNear) {
    EXPECT_TRUE(is_near_key("name", "app.kubernetes.io/name"));
    EXPECT_TRUE(is_near_key("app.kubernetes.io/name", "app.kubernetes.io/nmae"));
    EXPECT_FALSE(is_near_key("app", "tier"));
    EXPECT_FALSE(is_near_key("app", "app"));
}

// Separators and case compared in place: a separator at either end, runs of them, a prefix of the other.
TEST(NearMiss, CanonicalFormsCompareWhole) {
    EXPECT_TRUE(is_near_string("-web-", "WEB"));
    EXPECT_TRUE(is_near_string("a.b_c-d", "ABCD"));
    EXPECT_TRUE(is_near_string("db", "d--B"));
    EXPECT_FALSE(is_near_string("ab", "abc-"));  // a canonical prefix is not the same value
    EXPECT_TRUE(is_near_string("--", "_"));      // equal canonical forms (empty) are near
}

// Keys up to a DNS subdomain prefix and a name (253 + 63 bytes): past the distance table's stack rows.
TEST(NearMiss, LongKeysAreMeasured) {
    const std::string prefix(200, 'p');
    EXPECT_EQ(edit_distance(prefix + "/name", prefix + "/nmae", 2), 2u);
    EXPECT_TRUE(is_near_key(prefix + "/name", prefix + "/nmae"));
    EXPECT_GT(edit_distance(prefix + "/name", prefix + "/tier", 2), 2u);
}
