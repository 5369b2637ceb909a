// "Looks right" detection: when a selector misses only because a label drifted (the value lives
// under another key, a value or key differs by a small edit), the miss is a near miss worth a
// LABEL_MISMATCH hint. Plainly different labels (app=web vs app=db) are not near misses.
#pragma once

#include <cstddef>
#include <string_view>

namespace npt {

size_t edit_distance(std::string_view a, std::string_view b, size_t limit);

// Two distinct strings that a human would take for the same label value or key: equal ignoring
// case or separators (-, _, .), or a small edit apart relative to their length.
bool is_near_string(std::string_view a, std::string_view b);

// Keys that name the same thing: near strings, or one is the other's name part under a prefix
// ("name" vs "app.kubernetes.io/name").
bool is_near_key(std::string_view a, std::string_view b);

}  // namespace npt
