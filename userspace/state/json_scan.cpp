#include "state/json_scan.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include <array>
#include <bit>
#include <cstdint>

namespace npt::json_scan {

namespace {

// Bytes the bracket matcher stops at: quotes, backslashes, brackets.
constexpr std::array<bool, 256> kJsonStops = [] {
    std::array<bool, 256> a{};
    for (unsigned char c : std::string_view("\"\\{}[]")) a[c] = true;
    return a;
}();

#if defined(__SSE2__)
// Bit k set where p[k] is one of the bytes, for 64 bytes.
struct JsonBlock {
    uint64_t quote = 0;
    uint64_t backslash = 0;
    uint64_t open = 0;
    uint64_t close = 0;
};

JsonBlock classify_json_block(const unsigned char* p) {
    JsonBlock m;
    for (int k = 0; k < 4; ++k) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
        auto bits = [&](__m128i eq) {
            return static_cast<uint64_t>(static_cast<uint16_t>(_mm_movemask_epi8(eq))) << (16 * k);
        };
        m.quote |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')));
        m.backslash |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
        m.open |= bits(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('{')), _mm_cmpeq_epi8(v, _mm_set1_epi8('['))));
        m.close |= bits(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('}')), _mm_cmpeq_epi8(v, _mm_set1_epi8(']'))));
    }
    return m;
}

// Bit k set when an odd number of bits at or below k are set.
uint64_t prefix_xor(uint64_t x) {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}
#endif

}  // namespace

// One past the closing quote of the string whose opening quote is t[i]; npos if it does not close
// within t.
size_t string_end(std::string_view t, size_t i) {
    for (++i; i < t.size(); ++i) {
        if (t[i] == '"') return i + 1;
        if (t[i] == '\\') ++i;
    }
    return std::string_view::npos;
}

// One past the array or object that starts at t[i]; npos if it does not end within t.
size_t container_end(std::string_view t, size_t i) {
    const auto* p = reinterpret_cast<const unsigned char*>(t.data());
    size_t depth = 0;
    bool in_string = false;
    bool escaped = false;  // the byte before was a backslash in a string
    auto bytewise = [&](size_t from, size_t to) {
        for (size_t k = from; k < to; ++k) {
            const unsigned char c = p[k];
            if (escaped) {
                escaped = false;
            } else if (!kJsonStops[c]) {
                continue;
            } else if (in_string) {
                in_string = c != '"';
                escaped = c == '\\';
            } else if (c == '"') {
                in_string = true;
            } else if (c == '{' || c == '[') {
                ++depth;
            } else if (c == '}' || c == ']') {
                if (--depth == 0) return k + 1;
            }
        }
        return std::string_view::npos;
    };
#if defined(__SSE2__)
    // 64 bytes at a time; a block with a backslash (rare in Kubernetes objects) goes byte by byte.
    for (; i + 64 <= t.size(); i += 64) {
        const JsonBlock m = classify_json_block(p + i);
        if (escaped || m.backslash) {
            if (const size_t end = bytewise(i, i + 64); end != std::string_view::npos) return end;
            continue;
        }
        uint64_t strings = prefix_xor(m.quote);  // inside a string (or its opening quote)
        if (in_string) strings = ~strings;
        const uint64_t opens = m.open & ~strings;
        for (uint64_t brackets = opens | (m.close & ~strings); brackets; brackets &= brackets - 1) {
            const int bit = std::countr_zero(brackets);
            if (opens >> bit & 1) {
                ++depth;
            } else if (--depth == 0) {
                return i + static_cast<size_t>(bit) + 1;
            }
        }
        in_string = strings >> 63;
    }
#endif
    return bytewise(i, t.size());
}

// One past the JSON value that starts at t[i] (not whitespace); npos if it does not end within t.
// Only strings and brackets are followed: the parser validates the value.
size_t value_end(std::string_view t, size_t i) {
    const char c0 = t[i];
    if (c0 == '"') return string_end(t, i);
    if (c0 == '{' || c0 == '[') return container_end(t, i);
    for (; i < t.size(); ++i) {
        const char c = t[i];
        if (is_space(static_cast<unsigned char>(c)) || c == ',' || c == ']' || c == '}') return i;
    }
    return std::string_view::npos;
}

}  // namespace npt::json_scan
