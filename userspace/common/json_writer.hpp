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

// The length of the longest prefix of `s` that a JSON string literal holds byte for byte: no quote, backslash,
// control character or byte of a UTF-8 sequence. Reads 16 bytes at a time, and nothing past the end.
size_t json_plain_prefix(std::string_view s);

class JsonWriter {
  public:
    // Appends to `out`. The bytes are in `out` once the top-level value is complete (or the writer is
    // destroyed); until then `out` holds room the writer is still filling, and only the writer appends to it.
    // Between top-level values others may append to `out` too.
    explicit JsonWriter(std::string& out) : out_(out) {}
    ~JsonWriter() { commit(); }
    JsonWriter(const JsonWriter&) = delete;
    JsonWriter& operator=(const JsonWriter&) = delete;

    void begin_object() { open('{'); }
    void end_object() { close('}'); }
    void begin_array() { open('['); }
    void end_array() { close(']'); }

    // A member's name; the value follows with one of the value calls. A string literal is the renderers' own
    // name (plain ASCII, nothing to escape: asserted in debug builds) and is written without a scan.
    template <size_t N>
    void key(const char (&name)[N]) {
        static_assert(N >= 1);
        assert(std::string_view(name).size() == N - 1 && plain(name));
        // ,"name":  with one reservation and a copy of known size.
        reserve(N + 3);
        char* p = data_ + pos_;
        if (!first_) *p++ = ',';
        *p++ = '"';
        std::memcpy(p, name, N - 1);
        p += N - 1;
        *p++ = '"';
        *p++ = ':';
        pos_ = static_cast<size_t>(p - data_);
        first_ = false;
        after_key_ = true;
    }
    void key(std::string_view name) {
        if (plain(name)) {
            plain_key(name);
        } else {
            separate();
            escaped(name);
            put(':');
            after_key_ = true;
        }
    }

    void string(std::string_view s) {
        separate();
        escaped(s);
    }
    void null() {
        separate();
        put("null", 4);
        end_value();
    }
    void boolean(bool b) {
        separate();
        b ? put("true", 4) : put("false", 5);
        end_value();
    }
    void number(int64_t v);
    void number(uint64_t v);
    void number(int v) { number(static_cast<int64_t>(v)); }
    void number(unsigned v) { number(static_cast<uint64_t>(v)); }
    void number(uint16_t v) { number(static_cast<uint64_t>(v)); }
    // A value already serialized as compact JSON (a nested document rendered elsewhere).
    void raw(std::string_view json) {
        separate();
        put(json.data(), json.size());
        end_value();
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
    static void append_string(std::string& out, std::string_view s) {
        JsonWriter w(out);
        w.string(s);
    }

  private:
    // Room for n more bytes at pos_. The string grows by resizing (its own growth keeps that amortized); the
    // writer then fills the room through data_ and trims the string to pos_ when the value is complete.
    void reserve(size_t n) {
        if (cap_ - pos_ < n) grow(n);
    }
    void grow(size_t n);
    void put(char c) {
        reserve(1);
        data_[pos_++] = c;
    }
    void put(const char* p, size_t n) {
        reserve(n);
        std::memcpy(data_ + pos_, p, n);
        pos_ += n;
    }
    void commit() {
        if (!filling_) return;
        out_.resize(pos_);
        cap_ = pos_;
        filling_ = false;
    }
    // After a value: the document is complete when it was the top-level one, and a next one stands alone.
    void end_value() {
        if (depth_ != 0) return;
        commit();
        first_ = true;
    }
    void escaped(std::string_view s);  // the string literal, then end_value()
    void escaped_slow(std::string_view s);

    // ,"name":  with one reservation.
    void plain_key(std::string_view name) {
        reserve(name.size() + 4);
        char* p = data_ + pos_;
        if (!first_) *p++ = ',';
        *p++ = '"';
        std::memcpy(p, name.data(), name.size());
        p += name.size();
        *p++ = '"';
        *p++ = ':';
        pos_ = static_cast<size_t>(p - data_);
        first_ = false;
        after_key_ = true;
    }
    static bool plain(std::string_view s) { return json_plain_prefix(s) == s.size(); }
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
        if (!first_) put(',');
        first_ = false;
    }
    void open(char c) {
        separate();
        put(c);
        first_ = true;
        ++depth_;
    }
    void close(char c) {
        put(c);
        first_ = false;
        --depth_;
        end_value();
    }

    std::string& out_;
    size_t pos_ = 0;        // where the next byte goes
    char* data_ = nullptr;  // out_'s bytes...
    size_t cap_ = 0;        // ...of which [pos_, cap_) is room not yet written
    bool filling_ = false;  // out_ ends with room the writer has not filled yet
    int depth_ = 0;
    bool first_ = true;       // the next value is the first of its container (or the document)
    bool after_key_ = false;  // the next value is a member's, its name already written
};

}  // namespace npt
