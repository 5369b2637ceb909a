#include "state/node_adapter.hpp"

#include <array>
#include <string>

namespace npt::detail {

const char* node_type_phrase(NodeType t) {
    switch (t) {
        case NodeType::Missing:
            return "null";
        case NodeType::Bool:
            return "a boolean";
        case NodeType::Int:
            return "an integer";
        case NodeType::Float:
            return "a non-integer number";
        case NodeType::String:
            return "a string";
        case NodeType::Map:
            return "a map";
        case NodeType::List:
            return "a list";
    }
    return "?";
}

namespace {

constexpr std::string_view kYamlTagPrefix = "tag:yaml.org,2002:";

std::optional<bool> yaml11_bool(std::string_view s) {
    static constexpr std::array<std::string_view, 11> kTrue = {"y",    "Y",    "yes", "Yes", "YES", "true",
                                                               "True", "TRUE", "on",  "On",  "ON"};
    static constexpr std::array<std::string_view, 11> kFalse = {"n",     "N",     "no",  "No",  "NO", "false",
                                                                "False", "FALSE", "off", "Off", "OFF"};
    for (auto t : kTrue) {
        if (s == t) return true;
    }
    for (auto f : kFalse) {
        if (s == f) return false;
    }
    return std::nullopt;
}

int digit_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return 99;
}

enum class IntParse { NotInt, Ok, Overflow };

// An integer as go-yaml v2 reads one: optional sign, 0x/0o/0b or leading-0 octal, '_' separators.
IntParse parse_yaml_int(std::string_view s, int64_t& out) {
    bool negative = false;
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    if (s.empty() || digit_value(s.front()) > 9) return IntParse::NotInt;
    unsigned base = 10;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s.remove_prefix(2);
    } else if (s.size() > 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
        base = 2;
        s.remove_prefix(2);
    } else if (s.size() > 2 && s[0] == '0' && (s[1] == 'o' || s[1] == 'O')) {
        base = 8;
        s.remove_prefix(2);
    } else if (s.size() > 1 && s[0] == '0') {
        base = 8;
        s.remove_prefix(1);
    }
    uint64_t value = 0;
    bool digits = false;
    bool overflow = false;
    for (char c : s) {
        if (c == '_') continue;
        const int d = digit_value(c);
        if (d >= static_cast<int>(base)) return IntParse::NotInt;
        digits = true;
        if (value > (UINT64_MAX - static_cast<unsigned>(d)) / base) {
            overflow = true;
            continue;
        }
        value = value * base + static_cast<unsigned>(d);
    }
    if (!digits) return IntParse::NotInt;
    const uint64_t limit = negative ? uint64_t{1} << 63 : static_cast<uint64_t>(INT64_MAX);
    if (overflow || value > limit) return IntParse::Overflow;
    out = negative ? static_cast<int64_t>(~value + 1) : static_cast<int64_t>(value);
    return IntParse::Ok;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? or .inf/.nan spellings.
bool is_yaml_float(std::string_view s) {
    for (std::string_view special :
         {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN"}) {
        if (s == special) return true;
    }
    size_t i = 0;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t int_digits = 0, frac_digits = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++int_digits;
    if (i < s.size() && s[i] == '.') {
        ++i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++frac_digits;
    }
    if (int_digits == 0 && frac_digits == 0) return false;
    if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
        ++i;
        if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
        size_t exp_digits = 0;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i, ++exp_digits;
        if (exp_digits == 0) return false;
    }
    return i == s.size();
}

YamlScalar resolve_plain(std::string_view s) {
    YamlScalar out;
    if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
        out.type = NodeType::Missing;
        return out;
    }
    if (auto b = yaml11_bool(s)) {
        out.type = NodeType::Bool;
        out.bool_value = *b;
        return out;
    }
    switch (parse_yaml_int(s, out.int_value)) {
        case IntParse::Ok:
            out.type = NodeType::Int;
            return out;
        case IntParse::Overflow:
            out.type = NodeType::Float;
            return out;
        case IntParse::NotInt:
            break;
    }
    out.type = is_yaml_float(s) ? NodeType::Float : NodeType::String;
    return out;
}

}  // namespace

YamlScalar resolve_yaml_scalar(const YAML::Node& n) {
    const std::string& tag = n.Tag();
    const std::string& text = n.Scalar();
    if (tag == "!") return YamlScalar{};  // quoted or block scalar: always a string
    if (tag.size() > kYamlTagPrefix.size() &&
        std::string_view(tag).substr(0, kYamlTagPrefix.size()) == kYamlTagPrefix) {
        const std::string_view name = std::string_view(tag).substr(kYamlTagPrefix.size());
        if (name == "str") return YamlScalar{};
        YamlScalar resolved = resolve_plain(text);
        if (name == "int" && resolved.type != NodeType::Int) return YamlScalar{};
        if (name == "bool" && resolved.type != NodeType::Bool) return YamlScalar{};
        if (name == "null") resolved.type = NodeType::Missing;
        if (name == "float" && (resolved.type == NodeType::Int || resolved.type == NodeType::Float)) {
            resolved.type = NodeType::Float;
        }
        return resolved;
    }
    return resolve_plain(text);
}

}  // namespace npt::detail
