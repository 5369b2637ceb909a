// SIGINT/SIGTERM (and, asked for, SIGTSTP) as a descriptor: create it before any thread starts (informers, HTTP
// workers) so that every thread inherits the blocked mask and the signals reach only this descriptor. Loops check
// received() between polls and stop cleanly (summary, detach) without a process-global flag.
#pragma once

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace npt::live {

class SignalWatch {
  public:
    // job_control: SIGTSTP (Ctrl-Z) comes here too instead of stopping the process, so that a program that put
    // its terminal in a mode of its own can restore it before it stops itself (take() says which signal came).
    explicit SignalWatch(bool job_control = false) {
        sigemptyset(&mask_);
        sigaddset(&mask_, SIGINT);
        sigaddset(&mask_, SIGTERM);
        if (job_control) sigaddset(&mask_, SIGTSTP);
        pthread_sigmask(SIG_BLOCK, &mask_, &old_);
        fd_ = signalfd(-1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
    }
    ~SignalWatch() {
        if (fd_ >= 0) close(fd_);
        pthread_sigmask(SIG_SETMASK, &old_, nullptr);
    }
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

    // Whether SIGINT or SIGTERM arrived since the last call (consumed). A SIGTSTP met on the way takes its default
    // action: the process stops until continued.
    bool received() {
        for (int sig; (sig = take()) != 0;) {
            if (sig != SIGTSTP) return true;
            stop_self();
        }
        return false;
    }
    // Stops the whole process as Ctrl-Z would (SIGSTOP: SIGTSTP itself is blocked here); returns once continued.
    static void stop_self() { kill(getpid(), SIGSTOP); }
    // The next signal that arrived (consumed), 0 when none did.
    int take() {
        signalfd_siginfo info;
        if (fd_ < 0 || read(fd_, &info, sizeof(info)) != static_cast<ssize_t>(sizeof(info))) return 0;
        return static_cast<int>(info.ssi_signo);
    }
    int fd() const { return fd_; }

  private:
    sigset_t mask_{}, old_{};
    int fd_ = -1;
};

}  // namespace npt::live
