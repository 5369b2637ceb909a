// Standard base64 (RFC 4648 with padding), as kubeconfig's *-data fields and Go's []byte JSON use it.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace npt::k8s {

// Whitespace (line breaks in YAML block scalars) is skipped; missing padding is accepted.
std::optional<std::string> base64_decode(std::string_view text);
std::string base64_encode(std::string_view bytes);

}  // namespace npt::k8s
