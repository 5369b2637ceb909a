// Base64 (RFC 4648): the standard alphabet with padding, as kubeconfig's *-data fields and Go's []byte JSON use
// it, and the URL-safe alphabet without padding, as Calico's hashed chain names use it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace npt {

enum class Base64 { Standard, UrlNoPadding };

std::string base64_encode(std::string_view bytes, Base64 form = Base64::Standard);
// The standard alphabet. Whitespace (line breaks in YAML block scalars) is skipped; missing padding is accepted.
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace npt
