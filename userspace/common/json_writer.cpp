#include "common/json_writer.hpp"

#include <charconv>
#include <cstring>
#include <nlohmann/json.hpp>

namespace npt {

void JsonWriter::number(int64_t v) {
    separate();
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, res.ptr);
}

void JsonWriter::number(uint64_t v) {
    separate();
    char buf[24];
    auto res = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, res.ptr);
}

namespace {

constexpr uint64_t kOnes = 0x0101010101010101ULL;
constexpr uint64_t kHighs = 0x8080808080808080ULL;

// Non-zero when one of the word's 8 bytes is below 0x20, a quote, a backslash or not ASCII (the bit tricks
// may also flag bytes after a flagged one, never a word without one).
inline uint64_t needs_care(uint64_t w) {
    // With every byte below 0x80, (x - 0x01..) & ~x has a high bit set exactly when some byte of x is zero
    // (and (w - 0x20..) & ~w when some byte of w is below 0x20); w's own high bits flag the bytes above.
    const uint64_t quote = w ^ (kOnes * '"');
    const uint64_t backslash = w ^ (kOnes * '\\');
    return (((w - kOnes * 0x20) & ~w) | ((quote - kOnes) & ~quote) | ((backslash - kOnes) & ~backslash) | w) & kHighs;
}

}  // namespace

void JsonWriter::append_string(std::string& out, std::string_view s) {
    const size_t start = out.size();
    out += '"';
    const char* p = s.data();
    const char* const end = p + s.size();
    const char* plain = p;  // start of the run of bytes copied as they are
    while (p != end) {
        if (end - p >= 8) {
            uint64_t w;
            std::memcpy(&w, p, 8);
            if (!needs_care(w)) {
                p += 8;
                continue;
            }
        }
        const auto c = static_cast<unsigned char>(*p);
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            ++p;
            continue;
        }
        if (c >= 0x80) {
            // Names, labels and messages are ASCII almost always; anything else takes nlohmann's own
            // escaping, whose recovery from invalid UTF-8 (which bytes one U+FFFD replaces) is the contract.
            out.resize(start);
            out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            return;
        }
        out.append(plain, p);
        plain = ++p;
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default: {
                static constexpr char hex[] = "0123456789abcdef";
                const char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};
                out.append(esc, sizeof esc);
            }
        }
    }
    out.append(plain, end);
    out += '"';
}

}  // namespace npt
