#include "output/live_view.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "output/drop_text.hpp"
#include "output/live_table.hpp"

namespace npt {

std::vector<LiveKey> decode_live_keys(std::string_view b) {
    std::vector<LiveKey> keys;
    for (size_t i = 0; i < b.size();) {
        const char c = b[i];
        if (c == '\r' || c == '\n') {
            keys.push_back(LiveKey::Enter);
            ++i;
        } else if (c == 'k') {
            keys.push_back(LiveKey::Up);
            ++i;
        } else if (c == 'j') {
            keys.push_back(LiveKey::Down);
            ++i;
        } else if (c == 'q') {
            keys.push_back(LiveKey::Close);
            ++i;
        } else if (c == '\x1b') {
            // CSI ("ESC [") or SS3 ("ESC O") sequences: parameters, then one final byte.
            if (i + 1 >= b.size() || (b[i + 1] != '[' && b[i + 1] != 'O')) {
                keys.push_back(LiveKey::Close);
                ++i;
                continue;
            }
            size_t j = i + 2;
            while (j < b.size() && (std::isdigit(static_cast<unsigned char>(b[j])) || b[j] == ';')) ++j;
            if (j >= b.size()) break;  // a sequence cut short: nothing to act on
            const std::string_view params = b.substr(i + 2, j - i - 2);
            switch (b[j]) {
                case 'A':
                    keys.push_back(LiveKey::Up);
                    break;
                case 'B':
                    keys.push_back(LiveKey::Down);
                    break;
                case 'H':
                    keys.push_back(LiveKey::Home);
                    break;
                case 'F':
                    keys.push_back(LiveKey::End);
                    break;
                case '~':
                    if (params == "5") keys.push_back(LiveKey::PageUp);
                    if (params == "6") keys.push_back(LiveKey::PageDown);
                    if (params == "1" || params == "7") keys.push_back(LiveKey::Home);
                    if (params == "4" || params == "8") keys.push_back(LiveKey::End);
                    break;
                default:
                    break;  // right, left, function keys: nothing in this view
            }
            i = j + 1;
        } else {
            ++i;
        }
    }
    return keys;
}

void LiveView::on_key(LiveKey key, size_t rows) {
    constexpr size_t kPage = 10;
    const size_t last = rows ? rows - 1 : 0;
    switch (key) {
        case LiveKey::Up:
            selected_ = selected_ ? selected_ - 1 : 0;
            break;
        case LiveKey::Down:
            selected_ = std::min(selected_ + 1, last);
            break;
        case LiveKey::PageUp:
            selected_ = selected_ > kPage ? selected_ - kPage : 0;
            break;
        case LiveKey::PageDown:
            selected_ = std::min(selected_ + kPage, last);
            break;
        case LiveKey::Home:
            selected_ = 0;
            break;
        case LiveKey::End:
            selected_ = last;
            break;
        case LiveKey::Enter:
            detail_ = !detail_ && rows > 0;
            break;
        case LiveKey::Close:
            detail_ = false;
            break;
    }
    selected_ = std::min(selected_, last);
}

std::vector<std::string> LiveView::render(const std::vector<const DropRecord*>& rows, size_t width, size_t height,
                                          bool wide) const {
    const size_t selected = rows.empty() ? 0 : std::min(selected_, rows.size() - 1);
    if (detail_ && !rows.empty()) {
        std::vector<std::string> out{
            fmt::format("flow {} of {} (Up/Down: another flow, Enter or Esc: back to the table)", selected + 1,
                        rows.size()),
            ""};
        std::ostringstream text;
        write_drop_text(text, drop_text(*rows[selected], "drop"), true);
        std::string line;
        std::istringstream in(text.str());
        while (std::getline(in, line)) out.push_back(line);
        return out;
    }
    // The rows that fit under the header, the selected one among them.
    const size_t fit = height > 1 ? height - 1 : 1;
    size_t first = 0;
    if (rows.size() > fit && selected >= fit) first = std::min(selected - fit + 1, rows.size() - fit);
    const size_t count = std::min(fit, rows.size() - std::min(first, rows.size()));
    const std::vector<const DropRecord*> shown(rows.begin() + first, rows.begin() + first + count);
    std::vector<std::string> lines = render_live_table(shown, width, wide);
    if (!rows.empty() && lines.size() > selected - first + 1)
        lines[selected - first + 1] = "\033[7m" + lines[selected - first + 1] + "\033[0m";
    return lines;
}

}  // namespace npt
