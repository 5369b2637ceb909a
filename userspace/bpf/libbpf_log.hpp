// libbpf prints through one process-wide callback. This routes it to a scoped, per-thread sink so libbpf
// output never reaches the user's terminal unless they asked for debug output, and keeps the last warning to
// build a one-line error from.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace npt::capture {

using DebugSink = std::function<void(std::string_view line)>;

// While alive, libbpf messages emitted on this thread go to `sink` (when set) instead of stderr; without a
// capture in scope they are discarded. Nested captures restore the previous one.
class LibbpfLogCapture {
  public:
    explicit LibbpfLogCapture(DebugSink sink);
    ~LibbpfLogCapture();
    LibbpfLogCapture(const LibbpfLogCapture&) = delete;
    LibbpfLogCapture& operator=(const LibbpfLogCapture&) = delete;

    // Last warning-level line libbpf printed in this scope ("" if none), trailing newline removed.
    const std::string& last_warning() const { return last_warning_; }
    // The verifier's complaint from the last program load log in this scope ("" if none): the line that says
    // why.
    const std::string& verifier_error() const { return verifier_error_; }
    // verifier_error() when there is one, else last_warning().
    const std::string& best_error() const { return verifier_error_.empty() ? last_warning_ : verifier_error_; }

    void on_message(int level, std::string_view text);

  private:
    DebugSink sink_;
    std::string last_warning_;
    std::string verifier_error_;
    LibbpfLogCapture* previous_;
};

}  // namespace npt::capture
