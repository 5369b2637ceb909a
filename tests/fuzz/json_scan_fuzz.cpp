// libFuzzer target: the --state loader's JSON value scanner (state/json_scan.hpp) against a byte-by-byte reference
// written here from the JSON grammar's strings and brackets. For any bytes, at every place a string, array or
// object may start, both must say the same: where the value ends, or that it does not end. The scanner's 64-byte
// SSE2 blocks, its fallback for blocks holding a backslash and the carry of an escape or a string across blocks
// are what differ from the reference.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "state/json_scan.hpp"

namespace {

constexpr size_t kNpos = std::string_view::npos;

size_t reference_end(std::string_view t, size_t i) {
    if (t[i] == '"') {
        for (size_t k = i + 1; k < t.size(); ++k) {
            if (t[k] == '\\') {
                ++k;
            } else if (t[k] == '"') {
                return k + 1;
            }
        }
        return kNpos;
    }
    size_t depth = 0;
    bool in_string = false;
    for (size_t k = i; k < t.size(); ++k) {
        const char c = t[k];
        if (in_string) {
            if (c == '\\') {
                ++k;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            ++depth;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return k + 1;
        }
    }
    return kNpos;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    int starts = 0;
    for (size_t i = 0; i < text.size() && starts < 16; ++i) {
        const char c = text[i];
        if (c != '"' && c != '{' && c != '[') continue;
        ++starts;
        if (npt::json_scan::value_end(text, i) != reference_end(text, i)) std::abort();
    }
    const size_t first = npt::json_scan::skip_space(text, 0);
    if (first > text.size() || (first < text.size() && npt::json_scan::is_space(text[first]))) std::abort();
    return 0;
}
