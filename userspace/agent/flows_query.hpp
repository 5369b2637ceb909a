// The /flows query: namespace= (repeatable or comma-separated), pod= (NAME with one namespace, or NAMESPACE/NAME),
// since= (a duration: 90s, 15m, 24h, 7d). A bad one is answered 400 with the error's one line.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "flows/connection.hpp"

namespace npt::agent {

// `values(key)`: every value the query gives for key, in order.
Result<ConnectionFilter> parse_flows_query(const std::function<std::vector<std::string>(const char*)>& values,
                                           TimePoint now);

}  // namespace npt::agent
