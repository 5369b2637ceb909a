// The API server's syntax rules for the strings the loader keeps: label keys and values
// (qualified names), IANA service names (named ports) and protocols. Each check returns the
// reason a string is invalid, or nothing when it is valid, so callers can name the field.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "state/objects.hpp"

namespace npt {

// A label key: an optional DNS-subdomain prefix and '/', then a name of at most 63 characters of
// [A-Za-z0-9_.-] that starts and ends with an alphanumeric (k8s IsQualifiedName).
std::optional<std::string> label_key_problem(std::string_view key);

// A label value: empty, or at most 63 characters of the name alphabet (k8s IsValidLabelValue).
std::optional<std::string> label_value_problem(std::string_view value);

// An object name: a lowercase RFC 1123 subdomain of at most 253 characters (the rule for Pod,
// NetworkPolicy, Node, EndpointSlice names; Services and Namespaces have stricter ones, not checked).
std::optional<std::string> object_name_problem(std::string_view name);

// A namespace name: a lowercase RFC 1123 label of at most 63 characters.
std::optional<std::string> namespace_name_problem(std::string_view name);

// A named port: 1-15 lowercase alphanumerics and '-', at least one letter, no leading, trailing
// or doubled '-' (k8s IsValidPortName, IANA_SVC_NAME).
std::optional<std::string> port_name_problem(std::string_view name);

// The API accepts exactly "TCP", "UDP" and "SCTP"; unlike parse_protocol, case matters.
std::optional<Protocol> parse_api_protocol(std::string_view text);

}  // namespace npt
