#include "policy/near_miss.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace npt {

size_t edit_distance(std::string_view a, std::string_view b, size_t limit) {
    const size_t la = a.size(), lb = b.size();
    if ((la > lb ? la - lb : lb - la) > limit) return limit + 1;
    // Two rows of the table; label values (at most 63 bytes) and most keys fit those on the stack.
    constexpr size_t kStackRow = 128;
    std::array<size_t, 2 * kStackRow> stack_rows;
    std::vector<size_t> heap_rows;
    size_t* rows = stack_rows.data();
    if (lb + 1 > kStackRow) {
        heap_rows.resize(2 * (lb + 1));
        rows = heap_rows.data();
    }
    size_t* prev = rows;
    size_t* cur = rows + lb + 1;
    for (size_t j = 0; j <= lb; ++j) prev[j] = j;
    for (size_t i = 1; i <= la; ++i) {
        cur[0] = i;
        size_t row_min = cur[0];
        for (size_t j = 1; j <= lb; ++j) {
            const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
            row_min = std::min(row_min, cur[j]);
        }
        if (row_min > limit) return limit + 1;
        std::swap(prev, cur);
    }
    return prev[lb];
}

namespace {

bool separator(char c) {
    return c == '-' || c == '_' || c == '.';
}

char lower(char c) {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

// Equal ignoring ASCII case and the separators - _ . (compared in place, without building either form).
bool same_canonical(std::string_view a, std::string_view b) {
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a.size() && separator(a[i])) ++i;
        while (j < b.size() && separator(b[j])) ++j;
        if (i == a.size() || j == b.size()) return i == a.size() && j == b.size();
        if (lower(a[i]) != lower(b[j])) return false;
        ++i;
        ++j;
    }
}

std::string_view name_part(std::string_view key) {
    const auto slash = key.rfind('/');
    return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

}  // namespace

bool is_near_string(std::string_view a, std::string_view b) {
    if (a == b || a.empty() || b.empty()) return false;
    if (same_canonical(a, b)) return true;
    const size_t shorter = std::min(a.size(), b.size());
    // Short values differ meaningfully by one letter (api/app, db/dc): only longer ones count.
    const size_t limit = shorter >= 8 ? 2 : shorter >= 4 ? 1 : 0;
    return limit > 0 && edit_distance(a, b, limit) <= limit;
}

bool is_near_key(std::string_view a, std::string_view b) {
    if (a == b) return false;
    if (is_near_string(a, b)) return true;
    const auto na = name_part(a), nb = name_part(b);
    return (na == nb || is_near_string(na, nb)) && (na.size() != a.size() || nb.size() != b.size());
}

}  // namespace npt
