// The text of a dropped flow, one renderer for every place that prints one: the local tail's lines and its
// summary, and the cluster-wide tail's, which has the agents' JSON lines (drop_json) instead of DropRecords. Both
// sources fill a DropText; only the functions below turn it into text, so the two tails cannot drift apart.
#pragma once

#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/error.hpp"
#include "output/drop_record.hpp"
#include "output/json_output.hpp"

namespace npt {

struct DropText {
    bool resumed = false;
    std::string time;  // first seen, RFC 3339
    std::string node;
    std::string protocol;  // as the kernel saw it
    std::string src;       // endpoint labels: "shop/frontend-7d9f8b6c5-q2w8x (10.42.0.12)"
    std::string dst;
    uint16_t port = 0;
    std::string reason;
    std::string enforcement;
    std::string ct_state;
    uint64_t count = 0;
    std::string verdict;              // "allowed", "denied", ...; "" when no cluster state explained the flow
    std::optional<std::string> rule;  // the text after "rule: "

    struct DeniedSide {
        std::string direction;  // "egress" | "ingress"
        std::string pod;        // "?" when not a pod
        std::string denied;     // "denied by admin policy x (rule 0, priority 5)" | "denied: isolated by a, b"
        std::vector<std::string> passed_on;  // "policy x (rule 0 \"name\", priority 5)"
        std::vector<std::string> misses;     // "<policy>: <what the closest rule misses>"
        bool operator==(const DeniedSide&) const = default;
    };
    std::vector<DeniedSide> denied_sides;
    std::vector<std::pair<std::string, std::string>> hints;  // code, message

    struct FixLine {
        std::string direction;
        std::string text;  // summary and, for a policy change, what else it opens and closes
        std::optional<std::string> command;
        bool operator==(const FixLine&) const = default;
    };
    std::vector<FixLine> fixes;  // the best fix of each direction

    bool operator==(const DropText&) const = default;
};

// `event`: "drop", "resumed" or "summary".
DropText drop_text(const DropRecord& record, std::string_view event);
// From one JSON line of an agent's /events stream (drop_json's shape); an error names what is missing.
Result<DropText> drop_text_from_json(const Json& line);

// A string member of an agent's line, "" when it is missing or not a string: the lines come from the network and
// reading them never throws.
std::string json_string(const Json& j, const char* key);

// One line, then (with_details) the rule, the denying sides with their closest rules' misses, the hints and the
// best fix of each direction, indented.
void write_drop_text(std::ostream& out, const DropText& d, bool with_details);
// One line of the tail's closing summary: "  <count>  <node> <protocol> <src> -> <dst>:<port> <reason> at ...".
void write_drop_summary_row(std::ostream& out, const DropText& d);

}  // namespace npt
