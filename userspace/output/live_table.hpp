// The tail's live view on a terminal: one row per dropped flow, fitted to the terminal's width. Columns that
// carry names (source, destination, policy, reason, enforcement point) shrink first, their values elided in
// the middle as `kubectl get` and `top` do ("payments/checkout-…-k8j7h"); when even their minimum widths do
// not fit, the least telling columns go (conntrack state, enforcement point, protocol). Wide mode keeps every
// column at its full width and lets the terminal wrap.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "output/drop_record.hpp"

namespace npt {

// What the POLICY column says of a drop: "-" without a cluster state; "allowed" when the policies allow what
// the kernel dropped; otherwise the verdict and the policy that decided the denying side (the Admin or
// Baseline rule's policy, or the first isolating NetworkPolicy and how many more isolate it: "+2"), then the
// first hint.
std::string live_policy_label(const DropRecord& record);

// `s` cut to `width` display columns with "…" in the middle (UTF-8 aware: a multi-byte character counts as
// one column and is never split).
std::string elide_middle(std::string_view s, size_t width);

// The header and one line per record (no trailing newlines), each at most `width` columns unless `wide`.
std::vector<std::string> render_live_table(const std::vector<const DropRecord*>& records, size_t width, bool wide);

}  // namespace npt
