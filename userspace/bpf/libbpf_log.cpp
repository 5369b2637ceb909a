#include "libbpf_log.hpp"

#include <bpf/libbpf.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace npt::capture {
namespace {

thread_local LibbpfLogCapture* t_current = nullptr;

int route_libbpf_message(enum libbpf_print_level level, const char* format, va_list args) {
    LibbpfLogCapture* capture = t_current;
    if (capture == nullptr) {
        return 0;
    }
    va_list copy;
    va_copy(copy, args);
    const int n = std::vsnprintf(nullptr, 0, format, copy);
    va_end(copy);
    if (n <= 0) {
        return 0;
    }
    // Verifier logs arrive as one message of many kilobytes.
    std::string text(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(text.data(), text.size(), format, args);
    text.resize(static_cast<size_t>(n));
    capture->on_message(static_cast<int>(level), text);
    return n;
}

void install_print_callback_once() {
    static std::once_flag once;
    std::call_once(once, [] { libbpf_set_print(route_libbpf_message); });
}

}  // namespace

LibbpfLogCapture::LibbpfLogCapture(DebugSink sink) : sink_(std::move(sink)), previous_(t_current) {
    install_print_callback_once();
    t_current = this;
}

LibbpfLogCapture::~LibbpfLogCapture() {
    t_current = previous_;
}

namespace {

// The last line of a verifier log that is not its statistics footer.
std::string verifier_complaint(std::string_view log) {
    constexpr std::string_view kBegin = "-- BEGIN PROG LOAD LOG --";
    constexpr std::string_view kEnd = "-- END PROG LOAD LOG --";
    const auto begin = log.find(kBegin);
    if (begin == std::string_view::npos) {
        return "";
    }
    log.remove_prefix(begin + kBegin.size());
    log = log.substr(0, log.find(kEnd));
    std::string_view best;
    while (!log.empty()) {
        const auto eol = log.find('\n');
        std::string_view line = log.substr(0, eol);
        log = eol == std::string_view::npos ? std::string_view() : log.substr(eol + 1);
        if (!line.empty() && line.rfind("processed ", 0) != 0 && line.rfind("verification time", 0) != 0 &&
            line.rfind("stack depth", 0) != 0) {
            best = line;
        }
    }
    return std::string(best);
}

}  // namespace

void LibbpfLogCapture::on_message(int level, std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
        text.remove_suffix(1);
    }
    if (level == LIBBPF_WARN && !text.empty()) {
        if (auto complaint = verifier_complaint(text); !complaint.empty()) {
            verifier_error_ = "verifier: " + complaint;
        }
        // Keep one line: libbpf warnings are single lines except the verifier log.
        last_warning_.assign(text.substr(0, text.find('\n')));
    }
    if (sink_) {
        sink_(text);
    }
}

}  // namespace npt::capture
