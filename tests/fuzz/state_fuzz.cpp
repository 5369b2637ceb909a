// libFuzzer target: any bytes given to the --state loader yield objects or a one-line error,
// never a crash, an exception, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "state/state_loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    npt::ClusterObjects out;
    npt::LoadStats stats;
    const auto err = npt::load_state_text(text, "fuzz", out, &stats);
    if (err && (err->message.rfind("fuzz", 0) != 0 || err->message.find('\n') != std::string::npos)) std::abort();
    return 0;
}
