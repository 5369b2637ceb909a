// Where a JSON value ends, without parsing it: what lets the --state loader hand simdjson one item of a huge
// kubectl list at a time. Only strings and brackets are followed (a backslash escapes the next byte inside a
// string); the parser validates each value. Arrays and objects are scanned 64 bytes at a time with SSE2 where the
// CPU has it, byte by byte otherwise and in any block holding a backslash: both give the same answer.
#pragma once

#include <cstddef>
#include <string_view>

namespace npt::json_scan {

constexpr bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// The first index at or after i that is not JSON whitespace (t.size() if none).
inline size_t skip_space(std::string_view t, size_t i) {
    while (i < t.size() && is_space(static_cast<unsigned char>(t[i]))) ++i;
    return i;
}

// One past the closing quote of the string whose opening quote is t[i]; npos if it does not close within t.
size_t string_end(std::string_view t, size_t i);
// One past the array or object that starts at t[i] ('[' or '{'); npos if it does not end within t.
size_t container_end(std::string_view t, size_t i);
// One past the JSON value that starts at t[i] (not whitespace); npos if it does not end within t. A scalar
// ends at whitespace, ',', ']' or '}'.
size_t value_end(std::string_view t, size_t i);

}  // namespace npt::json_scan
