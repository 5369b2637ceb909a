#!/usr/bin/python3
"""The live view as a person uses it: the tail on a terminal (a pseudo-terminal of 160 x 40) while the lab drops the
runbook's label-mismatch case. Enter opens the selected flow's explanation in a pane (the tail's text form: verdict,
the isolating policy's closest rule and what it misses, the hint), Esc goes back to the table, Ctrl-Z stops the tail
with the terminal's modes restored and SIGCONT (fg) takes the keys back, Ctrl-C ends the tail with its summary, and
the terminal's modes are what they were before the tail started.
"""
import fcntl
import os
import pty
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import BINARY, OCTETS, Lab, TestFailure, check, main, test_prefix  # noqa: E402


class Terminal:
    """A pseudo-terminal whose output is collected in the background."""

    def __init__(self, columns=160, rows=40):
        self.master, self.slave = pty.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.modes = termios.tcgetattr(self.slave)
        self.output = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def make_controlling(self):
        """In the child: a session of its own with this terminal as its controlling terminal, in the foreground, as
        a shell starts a command."""
        os.setsid()
        fcntl.ioctl(self.slave, termios.TIOCSCTTY, 0)

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.output += data

    def text(self, since=0):
        with self.lock:
            return self.output[since:].decode(errors="replace")

    def mark(self):
        with self.lock:
            return len(self.output)

    def type(self, keys: bytes):
        os.write(self.master, keys)

    def wait_for(self, needle, since=0, timeout=10):
        deadline = time.monotonic() + timeout
        while needle not in self.text(since):
            if time.monotonic() > deadline:
                raise TestFailure(f"no {needle!r} on the terminal within {timeout} s; it shows:\n"
                                  f"{self.text(since)[-3000:]}")
            time.sleep(0.05)

    def close(self):
        os.close(self.slave)
        os.close(self.master)


def wait_state(pid, states, what, timeout=5):
    """Waits until the process's state (/proc/PID/stat: R running, S sleeping, T stopped) is one of states."""
    deadline = time.monotonic() + timeout
    while True:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state in states:
            return
        check(time.monotonic() < deadline, f"netpol-trace is not {what} (state {state})")
        time.sleep(0.05)


def run():
    with Lab("kube-router", test_prefix("npttail-live"), OCTETS["live-view"]) as lab:
        term = Terminal()
        work = tempfile.mkdtemp(prefix="npt-live-view-")
        ready = os.path.join(work, "ready")
        proc = None
        try:
            proc = subprocess.Popen([BINARY, "--state", lab.state, "--node", lab.config["node"], "-n", "shop",
                                     "--duration", "50", "--ready-file", ready],
                                    stdin=term.slave, stdout=term.slave, stderr=term.slave,
                                    preexec_fn=term.make_controlling)
            deadline = time.monotonic() + 30
            while not os.path.exists(ready):
                check(proc.poll() is None, f"netpol-trace exited ({proc.returncode}): {term.text()}")
                check(time.monotonic() < deadline, f"netpol-trace did not attach within 30 s: {term.text()}")
                time.sleep(0.05)
            modes = termios.tcgetattr(term.slave)
            check(not modes[3] & (termios.ICANON | termios.ECHO), "the live view did not take the keys unbuffered")
            check(modes[3] & termios.ISIG, "Ctrl-C must still stop the tail")

            lab.traffic("label-mismatch", family="4")
            term.wait_for("Up/Down select, Enter explains")
            term.wait_for("shop/checkout")  # the dropped flow's row (a redraw every second)

            mark = term.mark()
            term.type(b"\r")
            term.wait_for("flow 1 of 1", since=mark, timeout=5)
            term.wait_for("LABEL_MISMATCH", since=mark, timeout=5)
            pane = term.text(mark)
            for want in ("policy: denied", "ingress of databases/postgres-0 denied: isolated by "
                         "databases/postgres-allow-checkout",
                         "      databases/postgres-allow-checkout: podSelector needs app=checkout"):
                check(want in pane, f"the explanation pane has no {want!r}:\n{pane}")

            mark = term.mark()
            term.type(b"\x1b")
            term.wait_for("DESTINATION", since=mark, timeout=5)  # back to the table
            check("flow 1 of 1" not in term.text(mark), "Esc did not close the pane")

            # Ctrl-Z: the terminal's modes come back before the tail stops; continued, it takes the keys again and
            # redraws.
            term.type(b"\x1a")
            wait_state(proc.pid, "T", "stopped after Ctrl-Z")
            stopped = termios.tcgetattr(term.slave)
            check(stopped[3] == term.modes[3], "the terminal's modes were not restored while the tail is stopped")
            mark = term.mark()
            proc.send_signal(signal.SIGCONT)
            wait_state(proc.pid, "RS", "running again after SIGCONT")
            term.wait_for("Up/Down select, Enter explains", since=mark, timeout=5)
            resumed = termios.tcgetattr(term.slave)
            check(not resumed[3] & (termios.ICANON | termios.ECHO), "the keys are not unbuffered again after fg")
            term.type(b"\r")
            term.wait_for("flow 1 of 1", since=mark, timeout=5)  # and read
            term.type(b"\x1b")

            mark = term.mark()
            proc.send_signal(signal.SIGINT)
            rc = proc.wait(timeout=15)
            check(rc == 0, f"netpol-trace exited {rc}: {term.text(mark)}")
            term.wait_for("summary: 1 dropped flow", since=mark, timeout=5)
            restored = termios.tcgetattr(term.slave)
            check(restored[3] == term.modes[3] and restored[6] == term.modes[6],
                  "the terminal's modes were not restored at exit")
            print("live view: Enter opened the flow's explanation, Esc went back, Ctrl-Z and fg kept the terminal "
                  "sane, the terminal was restored")
        finally:
            if proc and proc.poll() is None:
                proc.kill()
                proc.wait()
            term.close()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(run, "tail_live_view_test")
