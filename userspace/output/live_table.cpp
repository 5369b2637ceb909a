#include "output/live_table.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "output/text_output.hpp"

namespace npt {
namespace {

// Display columns of UTF-8 text: one per code point (the tail's values are names and addresses; no wide
// glyphs).
size_t display_width(std::string_view s) {
    size_t n = 0;
    for (const unsigned char c : s) n += (c & 0xC0) != 0x80;
    return n;
}

// Byte offset of the code point that starts display column `col` (s.size() past the end).
size_t byte_offset(std::string_view s, size_t col) {
    size_t i = 0;
    for (; i < s.size(); ++i) {
        if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
        if (col == 0) return i;
        --col;
    }
    return s.size();
}

enum class Align { Left, Right };

// A cell's text: what surrounds `body` stays whole when the cell is narrowed (a verdict and a hint around a
// policy's name), the body is elided in the middle.
struct Cell {
    std::string head, body, tail;
    size_t width() const { return display_width(head) + display_width(body) + display_width(tail); }
    std::string fit(size_t width) const {
        const size_t fixed = display_width(head) + display_width(tail);
        if (width >= fixed + 4) return head + elide_middle(body, width - fixed) + tail;
        return elide_middle(head + body + tail, width);
    }
};

struct Column {
    const char* header;
    size_t keep;  // an elastic column shrinks to this before any other goes below theirs...
    size_t min;   // ...and then down to this; a fixed column keeps its natural width
    bool elastic;
    int drop_rank;  // columns go in rank order (1 first) while the kept widths do not fit; 0: never
    Align align = Align::Left;
    std::vector<Cell> values;
    size_t width = 0;
    bool shown = true;
};

std::string pad(const Cell& c, size_t width, Align align) {
    const std::string text = c.fit(width);
    const std::string fill(width - display_width(text), ' ');
    return align == Align::Left ? text + fill : fill + text;
}

// A pod by its name (the table has no room for its address too, unless wide), anything else by its address.
std::string endpoint_cell(const EndpointRef& r, bool wide) {
    return wide || !r.pod ? endpoint_label(r) : *r.pod;
}

// The POLICY column's text in parts: the verdict, the policy's name (elidable), the hint.
Cell policy_cell(const DropRecord& record) {
    const std::string label = live_policy_label(record);
    Cell c;
    const size_t name = label.find(' ');
    const Explanation& e = record.explanation;
    if (!record.attributed || name == std::string::npos) {
        c.body = label;
        return c;
    }
    c.head = label.substr(0, name + 1);
    c.body = label.substr(name + 1);
    if (!e.hints.empty() && c.body.size() > e.hints.front().code.size()) {
        const size_t hint = c.body.size() - e.hints.front().code.size();
        if (c.body.compare(hint, std::string::npos, e.hints.front().code) == 0 && hint > 0) {
            c.tail = c.body.substr(hint - 1);
            c.body.resize(hint - 1);
        }
    }
    return c;
}

}  // namespace

std::string elide_middle(std::string_view s, size_t width) {
    const size_t have = display_width(s);
    if (have <= width) return std::string(s);
    if (width == 0) return {};
    const size_t keep = width - 1, head = (keep + 1) / 2, tail = keep / 2;
    return std::string(s.substr(0, byte_offset(s, head))) + "\u2026" +
           std::string(s.substr(byte_offset(s, have - tail)));
}

std::string live_policy_label(const DropRecord& record) {
    if (!record.attributed) return "-";
    const Explanation& e = record.explanation;
    std::string label = e.allowed() ? "allowed" : e.verdict;
    if (!e.allowed()) {
        // The egress side is decided first (its hook runs before the destination's ingress).
        const SideExplanation* side = !e.egress.allowed ? &e.egress : !e.ingress.allowed ? &e.ingress : nullptr;
        if (side && side->decided_by.rule) {
            label += " " + side->decided_by.rule->policy;
        } else if (side && !side->policies.empty()) {
            label += " " + side->policies.front();
            if (side->policies.size() > 1) label += fmt::format(" +{}", side->policies.size() - 1);
        }
    }
    if (!e.hints.empty()) label += " " + e.hints.front().code;
    return label;
}

std::vector<std::string> render_live_table(const std::vector<const DropRecord*>& records, size_t width, bool wide) {
    std::array<Column, 9> cols{{
        {"LAST SEEN", 0, 0, false, 4},
        {"SOURCE", 22, 12, true, 0},
        {"DESTINATION", 22, 12, true, 0},
        {"PROTO", 0, 0, false, 2},
        {"REASON", 0, 0, false, 5},
        {"ENFORCEMENT", 10, 10, true, 3},
        {"CT", 0, 0, false, 1},
        {"COUNT", 0, 0, false, 0, Align::Right},
        {"POLICY", 32, 16, true, 0},
    }};
    const auto plain = [](std::string s) { return Cell{{}, std::move(s), {}}; };
    for (const DropRecord* r : records) {
        const Explanation& e = r->explanation;
        const std::string seen = format_time(r->last_seen);  // 2026-12-07T05:53:03.123Z
        cols[0].values.push_back(plain(wide ? seen.substr(0, 19) : seen.substr(11, 8)));
        cols[1].values.push_back(plain(endpoint_cell(e.src, wide)));
        cols[2].values.push_back(Cell{{}, endpoint_cell(e.dst, wide), e.port ? fmt::format(":{}", e.port) : ""});
        cols[3].values.push_back(plain(r->protocol_name));
        cols[4].values.push_back(plain(r->reason));
        cols[5].values.push_back(plain(r->enforcement));
        cols[6].values.push_back(plain(r->ct_state));
        cols[7].values.push_back(plain(std::to_string(r->count)));
        cols[8].values.push_back(policy_cell(*r));
    }
    for (auto& c : cols) {
        c.width = display_width(c.header);
        for (const auto& v : c.values) c.width = std::max(c.width, v.width());
        c.min = std::min(c.min, c.width);
        c.keep = std::clamp(c.keep, c.min, c.width);
    }
    constexpr size_t kGap = 2;
    enum class At { Natural, Keep };
    const auto total = [&](At at) {
        size_t sum = 0, shown = 0;
        for (const auto& c : cols) {
            if (!c.shown) continue;
            sum += at == At::Keep && c.elastic ? c.keep : c.width;
            ++shown;
        }
        return sum + (shown ? (shown - 1) * kGap : 0);
    };
    if (!wide) {
        // Columns go before names are cut below what keeps them readable.
        for (int rank = 1; total(At::Keep) > width && rank <= 5; ++rank)
            for (auto& c : cols)
                if (c.drop_rank == rank) c.shown = false;
        // Shrink, one column of text at a time, the elastic column furthest above the width it keeps (then
        // above its minimum) until the row fits.
        size_t excess = total(At::Natural) > width ? total(At::Natural) - width : 0;
        for (const bool to_min : {false, true}) {
            for (; excess > 0; --excess) {
                Column* widest = nullptr;
                const auto floor = [&](const Column& c) { return to_min ? c.min : c.keep; };
                for (auto& c : cols)
                    if (c.shown && c.elastic && c.width > floor(c) &&
                        (!widest || c.width - floor(c) > widest->width - floor(*widest)))
                        widest = &c;
                if (!widest) break;
                --widest->width;
            }
        }
    }
    const auto line = [&](const auto& cell) {
        std::string out;
        const Column* last = nullptr;
        for (const auto& c : cols)
            if (c.shown) last = &c;
        for (const auto& c : cols) {
            if (!c.shown) continue;
            std::string text = pad(cell(c), c.width, c.align);
            if (&c == last) {
                while (!text.empty() && text.back() == ' ') text.pop_back();
            }
            out += text;
            if (&c != last) out.append(kGap, ' ');
        }
        if (wide || display_width(out) <= width) return out;
        return width == 0 ? std::string() : out.substr(0, byte_offset(out, width - 1)) + "\u2026";
    };
    std::vector<std::string> lines;
    lines.push_back(line([](const Column& c) { return Cell{{}, c.header, {}}; }));
    for (size_t i = 0; i < records.size(); ++i) lines.push_back(line([i](const Column& c) { return c.values[i]; }));
    return lines;
}

}  // namespace npt
