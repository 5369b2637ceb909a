#include "policy/near_miss.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

namespace npt {

size_t edit_distance(std::string_view a, std::string_view b, size_t limit) {
    const size_t la = a.size(), lb = b.size();
    if ((la > lb ? la - lb : lb - la) > limit) return limit + 1;
    std::vector<size_t> prev(lb + 1), cur(lb + 1);
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

std::string canonical(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        if (c == '-' || c == '_' || c == '.') continue;
        out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    }
    return out;
}

std::string_view name_part(std::string_view key) {
    const auto slash = key.rfind('/');
    return slash == std::string_view::npos ? key : key.substr(slash + 1);
}

}  // namespace

bool is_near_string(std::string_view a, std::string_view b) {
    if (a == b || a.empty() || b.empty()) return false;
    if (canonical(a) == canonical(b)) return true;
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
