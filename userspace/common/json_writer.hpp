// A streaming JSON writer: appends compact JSON to a string with no document object in between. Its bytes
// are exactly those of nlohmann's compact dump with error_handler_t::replace (the renderers' contract), so
// a renderer may switch between the two without changing its output.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace npt {

class JsonWriter {
  public:
    explicit JsonWriter(std::string& out) : out_(out) {}

    void begin_object() { open('{'); }
    void end_object() { close('}'); }
    void begin_array() { open('['); }
    void end_array() { close(']'); }

    // A member's name; the value follows with one of the value calls. A string literal is the renderers' own
    // name (plain ASCII, nothing to escape: asserted in debug builds) and is written without a scan.
    template <size_t N>
    void key(const char (&name)[N]) {
        const std::string_view sv(name);
        assert(plain(sv));
        if (sv.size() <= kMaxPlainKey)
            plain_key(sv);
        else
            key(sv);  // a longer array takes the general path (and its bounds)
    }
    void key(std::string_view name) {
        if (name.size() <= kMaxPlainKey && plain(name)) {
            plain_key(name);
        } else {
            separate();
            append_string(out_, name);
            out_ += ':';
            after_key_ = true;
        }
    }

    void string(std::string_view s) {
        separate();
        append_string(out_, s);
    }
    void null() {
        separate();
        out_ += "null";
    }
    void boolean(bool b) {
        separate();
        out_ += b ? "true" : "false";
    }
    void number(int64_t v);
    void number(uint64_t v);
    void number(int v) { number(static_cast<int64_t>(v)); }
    void number(unsigned v) { number(static_cast<uint64_t>(v)); }
    void number(uint16_t v) { number(static_cast<uint64_t>(v)); }
    // A value already serialized as compact JSON (a nested document rendered elsewhere).
    void raw(std::string_view json) {
        separate();
        out_ += json;
    }

    void optional_string(const std::optional<std::string>& s) { s ? string(*s) : null(); }
    void strings(const std::vector<std::string>& values) {
        begin_array();
        for (const auto& v : values) string(v);
        end_array();
    }

    template <size_t N, typename T>
    void member(const char (&name)[N], const T& value) {
        key(name);
        value_of(value);
    }
    template <typename T>
    void member(std::string_view name, const T& value) {
        key(name);
        value_of(value);
    }

    // A JSON string literal as nlohmann's dump writes it: the escapes \" \\ \b \f \n \r \t, other control
    // characters as \u00xx, UTF-8 kept as is, invalid UTF-8 replaced by U+FFFD.
    static void append_string(std::string& out, std::string_view s);

  private:
    static constexpr size_t kMaxPlainKey = 60;
    // ,"name":  with one append.
    void plain_key(std::string_view name) {
        char buf[kMaxPlainKey + 4];
        size_t n = 0;
        if (!first_) buf[n++] = ',';
        buf[n++] = '"';
        std::memcpy(buf + n, name.data(), name.size());
        n += name.size();
        buf[n++] = '"';
        buf[n++] = ':';
        out_.append(buf, n);
        first_ = false;
        after_key_ = true;
    }
    static bool plain(std::string_view s) {
        for (const char c : s)
            if (static_cast<unsigned char>(c) < 0x20 || c == '"' || c == '\\' || static_cast<unsigned char>(c) >= 0x80)
                return false;
        return true;
    }
    void value_of(std::string_view s) { string(s); }
    void value_of(const std::string& s) { string(s); }
    void value_of(const char* s) { string(s); }
    void value_of(bool b) { boolean(b); }
    void value_of(const std::optional<std::string>& s) { optional_string(s); }
    void value_of(const std::vector<std::string>& v) { strings(v); }
    template <typename N>
    void value_of(N n) requires std::is_integral_v<N> {
        number(n);
    }

    void separate() {
        if (after_key_) {
            after_key_ = false;
            return;
        }
        if (!first_) out_ += ',';
        first_ = false;
    }
    void open(char c) {
        separate();
        out_ += c;
        first_ = true;
    }
    void close(char c) {
        out_ += c;
        first_ = false;
    }

    std::string& out_;
    bool first_ = true;       // the next value is the first of its container (or the document)
    bool after_key_ = false;  // the next value is a member's, its name already written
};

}  // namespace npt
