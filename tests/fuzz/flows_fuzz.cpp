// libFuzzer target: any bytes given as observed connections (--flows) yield connections or one line naming the
// source and line, never a crash, an exception or a sanitizer report; the time and duration parsers answer or
// decline.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "state/observed_flows.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::istringstream in(text);
    const auto flows = npt::read_observed_flows(in, "fuzz");
    if (!flows && (flows.error().message.rfind("fuzz line ", 0) != 0 ||
                   flows.error().message.find('\n') != std::string::npos))
        std::abort();
    if (flows)
        for (const auto& f : *flows)
            if (f.port == 0 || f.src_ip.family != f.dst_ip.family) std::abort();
    (void)npt::parse_rfc3339(text);
    if (auto d = npt::parse_duration(text); d && d->count() < 0) std::abort();
    return 0;
}
