#include "output/json_writer.hpp"

#include <charconv>
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

void JsonWriter::append_string(std::string& out, std::string_view s) {
    // Names, labels and messages are ASCII almost always; anything else takes nlohmann's own escaping, whose
    // recovery from invalid UTF-8 (which bytes one U+FFFD replaces) is the contract.
    for (unsigned char c : s) {
        if (c >= 0x80) {
            out +=
                nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            return;
        }
    }
    out += '"';
    size_t plain = 0;  // start of the run of bytes copied as they are
    for (size_t i = 0; i < s.size(); ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + plain, i - plain);
        plain = i + 1;
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
    out.append(s.data() + plain, s.size() - plain);
    out += '"';
}

}  // namespace npt
