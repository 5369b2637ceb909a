// SIGINT/SIGTERM as a descriptor: create it before any thread starts (informers, HTTP workers) so that
// every thread inherits the blocked mask and the signals reach only this descriptor. Loops check
// received() between polls and stop cleanly (summary, detach) without a process-global flag.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace npt::live {

class SignalWatch {
  public:
    SignalWatch() {
        sigemptyset(&mask_);
        sigaddset(&mask_, SIGINT);
        sigaddset(&mask_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &mask_, &old_);
        fd_ = signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
    }
    ~SignalWatch() {
        if (fd_ >= 0) close(fd_);
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

    // Whether a signal arrived since the last call (it is consumed).
    bool received() {
        signalfd_siginfo info;
        return fd_ >= 0 && read(fd_, &info, sizeof(info)) == static_cast<ssize_t>(sizeof(info));
    }
    int fd() const { return fd_; }

  private:
    sigset_t mask_{}, old_{};
    int fd_ = -1;
};

}  // namespace npt::live
