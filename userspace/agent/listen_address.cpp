#include "agent/agent_command.hpp"

#include <fmt/format.h>

namespace npt::agent {

Result<ListenAddress> parse_listen_address(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) {
        return Error{fmt::format("--listen {}: expected HOST:PORT, [V6]:PORT or :PORT", text)};
    }
    std::string host = text.substr(0, colon);
    const std::string port = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "0.0.0.0";
    int value = -1;
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos ||
        (value = std::stoi(port)) > 65535) {
        return Error{fmt::format("--listen {}: the port must be a number from 0 to 65535", text)};
    }
    return ListenAddress{host, value};
}

}  // namespace npt::agent
