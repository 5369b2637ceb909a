// libFuzzer target: any bytes given as connection lines (--flows, a journal, an agent's /flows) yield connections or
// one line naming the source and line, never a crash, an exception or a sanitizer report; every connection read is
// written back as a line that reads as the same connection; the time and duration parsers answer or decline.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "flows/connection.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::istringstream in(text);
    const auto flows = npt::read_connections(in, "fuzz");
    if (!flows &&
        (flows.error().message.rfind("fuzz line ", 0) != 0 || flows.error().message.find('\n') != std::string::npos))
        std::abort();
    if (flows)
        for (const auto& c : *flows) {
            if (c.port == 0 || c.src.ip.family != c.dst.ip.family) std::abort();
            const auto again = npt::parse_connection(npt::connection_json(c));
            if (!again || again->src.ip != c.src.ip || again->dst.ip != c.dst.ip || again->port != c.port ||
                again->protocol != c.protocol || again->side != c.side || again->count != c.count ||
                again->src.labels != c.src.labels || again->service != c.service)
                std::abort();
        }
    (void)npt::parse_rfc3339(text);
    if (auto d = npt::parse_duration(text); d && d->count() < 0) std::abort();
    return 0;
}
