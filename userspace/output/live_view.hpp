// The tail's live view on a terminal: the live table (live_table.hpp) with a selected row, and a pane with the
// selected flow's full explanation (the tail's text form: rule, denying sides, closest rules' misses, hints,
// fixes), so nobody needs `-o json | jq` to read one drop. Keys: Up/Down (or k/j) move the selection,
// PgUp/PgDn/Home/End jump, Enter opens the pane and closes it again, Esc (or q) closes it. Pure: the tail feeds
// it the bytes the terminal sent and prints what it renders.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "output/drop_record.hpp"

namespace npt {

enum class LiveKey { Up, Down, PageUp, PageDown, Home, End, Enter, Close };

// The keys in bytes a terminal in non-canonical mode sent (ANSI/VT100 and xterm's sequences; unknown bytes and
// sequences are skipped). A lone ESC is Close; an ESC that starts a sequence is not.
std::vector<LiveKey> decode_live_keys(std::string_view bytes);

class LiveView {
  public:
    // Applies a key to a view of `rows` flows.
    void on_key(LiveKey key, size_t rows);
    size_t selected() const { return selected_; }
    bool detail_open() const { return detail_; }

    // The screen below the title: the table's header and the rows that fit in `height` lines around the
    // selected one (marked in reverse video), or with the pane open, the selected flow's explanation.
    std::vector<std::string> render(const std::vector<const DropRecord*>& rows, size_t width, size_t height,
                                    bool wide) const;

  private:
    size_t selected_ = 0;
    bool detail_ = false;
};

}  // namespace npt
