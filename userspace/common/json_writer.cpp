#include "common/json_writer.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#ifdef __SSE2__
#include <emmintrin.h>
#endif
#include <nlohmann/json.hpp>

namespace npt {

void JsonWriter::number(int64_t v) {
    separate();
    reserve(24);
    pos_ = static_cast<size_t>(std::to_chars(data_ + pos_, data_ + cap_, v).ptr - data_);
    end_value();
}

void JsonWriter::number(uint64_t v) {
    separate();
    reserve(24);
    pos_ = static_cast<size_t>(std::to_chars(data_ + pos_, data_ + cap_, v).ptr - data_);
    end_value();
}

void JsonWriter::grow(size_t n) {
    if (!filling_) pos_ = out_.size();  // a new top-level value: out_ may have grown since the last one
    filling_ = true;
    // Whole pieces of room at a time: resizing writes the new bytes once, and the string's capacity doubles
    // by itself when it must.
    out_.resize(pos_ + std::max<size_t>(n, 1024));
    data_ = out_.data();
    cap_ = out_.size();
}

namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// The high bit of each of the word's 8 bytes that is below 0x20, a quote, a backslash or not ASCII; bytes after
// the first flagged one may be flagged wrongly (the subtractions borrow), the first flagged byte is exact.
inline uint64_t needs_care(uint64_t w) {
    // With every byte below 0x80, (x - 0x01..) & ~x has a high bit set exactly when some byte of x is zero
    // (and (w - 0x20..) & ~w when some byte of w is below 0x20); w's own high bits flag the bytes above.
    const uint64_t quote = w ^ (kOnes * '"');
    const uint64_t backslash = w ^ (kOnes * '\\');
    return (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) | w) & kHighs;
}

// The index of the first such byte of the 8 at p, or 8.
inline size_t word_first(const char* p) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    const uint64_t hits = needs_care(w);
    return hits ? static_cast<size_t>(__builtin_ctzll(hits)) / 8 : 8;  // little-endian: the first byte is lowest
}

#ifdef __SSE2__
// The same on 16 bytes, of 16: as signed bytes, those below 0x20 and those from 0x80 up are less than 0x20.
inline size_t block_first(const char* p) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i hit =
        _mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                     _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')), _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
    const int mask = _mm_movemask_epi8(hit);
    return mask ? static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask))) : 16;
}
#endif

}  // namespace

size_t json_plain_prefix(std::string_view s) {
    const char* const begin = s.data();
    const char* const end = begin + s.size();
    const char* p = begin;
    // Blocks in order; the last one overlaps the one before it instead of reading past the end (its bytes before
    // the overlap are known to be plain, so its first hit is the first of the string).
#ifdef __SSE2__
    if (s.size() >= 16) {
        for (; end - p > 16; p += 16)
            if (const size_t k = block_first(p); k < 16) return static_cast<size_t>(p - begin) + k;
        const size_t k = block_first(end - 16);
        return k < 16 ? s.size() - 16 + k : s.size();
    }
#endif
    if (s.size() >= 8) {
        for (; end - p > 8; p += 8)
            if (const size_t k = word_first(p); k < 8) return static_cast<size_t>(p - begin) + k;
        const size_t k = word_first(end - 8);
        return k < 8 ? s.size() - 8 + k : s.size();
    }
    for (; p != end; ++p) {
        const auto c = static_cast<unsigned char>(*p);
        if (c < 0x20 || c == '"' || c == '\\' || c >= 0x80) break;
    }
    return static_cast<size_t>(p - begin);
}

void JsonWriter::escaped(std::string_view s) {
    if (json_plain_prefix(s) != s.size()) return escaped_slow(s);
    reserve(s.size() + 2);
    char* out = data_ + pos_;
    *out++ = '"';
    std::memcpy(out, s.data(), s.size());
    out += s.size();
    *out++ = '"';
    pos_ = static_cast<size_t>(out - data_);
    end_value();
}

void JsonWriter::escaped_slow(std::string_view s) {
    // Names, labels and messages are ASCII almost always; anything else takes nlohmann's own escaping, whose
    // recovery from invalid UTF-8 (which bytes one U+FFFD replaces) is the contract.
    for (const char ch : s) {
        if (static_cast<unsigned char>(ch) >= 0x80) {
            const std::string dumped =
                nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            put(dumped.data(), dumped.size());
            end_value();
            return;
        }
    }
    put('"');
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                put("\\\"", 2);
                break;
            case '\\':
                put("\\\\", 2);
                break;
            case '\b':
                put("\\b", 2);
                break;
            case '\f':
                put("\\f", 2);
                break;
            case '\n':
                put("\\n", 2);
                break;
            case '\r':
                put("\\r", 2);
                break;
            case '\t':
                put("\\t", 2);
                break;
            default:
                if (c < 0x20) {
                    static constexpr char hex[] = "0123456789abcdef";
                    const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
                    put(esc, sizeof esc);
                } else {
                    put(ch);
                }
        }
    }
    put('"');
    end_value();
}

}  // namespace npt
