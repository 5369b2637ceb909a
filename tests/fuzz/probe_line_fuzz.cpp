// libFuzzer target: any bytes as a line of `explain --probes` get the same answer from parse_probe_line
// (which reads plain lines without a DOM) as from the DOM parse: the same question, or the same error and
// "from" value; never a crash, an exception or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cli/probe_line.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string line(reinterpret_cast<const char*>(data), size);
    npt::cli::ProbeDefaults with_defaults{"web", "UDP", 6};
    for (const auto& defaults : {npt::cli::ProbeDefaults{}, with_defaults}) {
        const auto fast = npt::cli::parse_probe_line(line, defaults);
        const auto dom = npt::cli::parse_probe_line_dom(line, defaults);
        if (fast.error != dom.error || fast.from != dom.from || fast.query.has_value() != dom.query.has_value())
            std::abort();
        if (fast.query && (fast.query->from != dom.query->from || fast.query->to != dom.query->to ||
                           fast.query->port != dom.query->port || fast.query->protocol != dom.query->protocol ||
                           fast.query->family != dom.query->family))
            std::abort();
    }
    return 0;
}
