#!/usr/bin/python3
"""Without privileges the tail prints one clear line and exits 1.

As root the binary runs as nobody (setpriv), from a private copy so the build tree's permissions do not matter;
as another user it runs directly. Three invocations: without attribution (--no-kubernetes), with --state and -n,
and -o json with --duration.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import BINARY, ROOT, TestFailure, check  # noqa: E402

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def run():
    work = tempfile.mkdtemp(prefix="npt-nonroot-")
    try:
        os.chmod(work, 0o755)
        binary = os.path.join(work, "netpol-trace")
        shutil.copy(BINARY, binary)
        os.chmod(binary, 0o755)
        state = os.path.join(work, "cluster.yaml")
        shutil.copy(os.path.join(ROOT, "examples", "runbook-cluster.yaml"), state)
        os.chmod(state, 0o644)
        prefix = NOBODY if os.geteuid() == 0 else []
        # The unprivileged user's own environment: no kubeconfig, no in-cluster service account.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "NODE_NAME"))}
        env["HOME"] = work
        failures = []
        for args in (["--no-kubernetes"], ["--state", state, "-n", "shop"],
                     ["-o", "json", "--state", state, "--duration", "1"]):
            r = subprocess.run(prefix + [binary, *args], text=True, capture_output=True, timeout=30, cwd=work,
                               env=env)
            lines = [x for x in r.stderr.splitlines() if x.strip()]
            what = f"netpol-trace {' '.join(args)} (unprivileged)"
            if r.returncode != 1:
                failures.append(f"{what}: exit {r.returncode}, want 1")
            if len(lines) != 1:
                failures.append(f"{what}: {len(lines)} lines on stderr, want one: {lines}")
            elif not any(w in lines[0] for w in ("root", "CAP_BPF")):
                failures.append(f"{what}: the line does not say what is missing: {lines[0]}")
            if r.stdout.strip():
                failures.append(f"{what}: printed on stdout: {r.stdout!r}")
        check(not failures, "\n  " + "\n  ".join(failures))
        print(f"unprivileged: one line, exit 1 ({lines[0]})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    try:
        run()
    except TestFailure as e:
        print(f"tail_nonroot_test: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print("tail_nonroot_test: passed")
