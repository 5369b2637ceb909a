#!/usr/bin/python3
"""The Debian package and the kubectl plugin, installed as a user installs them.

Builds the .deb of this build tree with CPack, checks its Depends against the binary's DT_NEEDED entries and its
contents, installs it with `apt-get install ./netpol-trace_*.deb`, then runs what was installed: `netpol-trace
--version`, `explain` on the bundled example, `kubectl netpol-trace` (kubectl finds the plugin on PATH; kubectl's
flags -n, --kubeconfig and --context before the command; its shell completion through kubectl_complete-netpol_trace,
the kubeconfig's contexts included), the bash completion and the man page. The package is purged at the end, also when a check fails. Root (dpkg); refuses to run where a netpol-trace
package is installed already, which it would replace.

Environment (tests/integration/package.cmake): NPT_BUILD_DIR, NPT_BINARY.
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import SKIP, TestFailure, check, main, terminate_on_sigterm  # noqa: E402

BUILD = os.environ.get("NPT_BUILD_DIR", os.path.join(os.path.dirname(os.path.dirname(
    os.path.dirname(os.path.abspath(__file__)))), "build"))
BINARY = os.environ.get("NPT_BINARY", os.path.join(BUILD, "netpol-trace"))
EXAMPLE = "/usr/share/doc/netpol-trace/examples/runbook-cluster.yaml"
CHECKOUT, POSTGRES = "shop/checkout-6f8d7c9b5-k8j7h", "databases/postgres-0"
DENIED = f"DENIED TCP {CHECKOUT} (10.42.0.22) -> {POSTGRES} (10.42.0.41):5432"
# A user's PATH: the installed files only, never the build tree's.
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Two contexts of an unreachable server: kubectl's flags and completion are checked without a cluster.
KUBECONFIG = """apiVersion: v1
kind: Config
current-context: prod
clusters:
- {name: lab, cluster: {server: "https://127.0.0.1:1"}}
users:
- {name: reader, user: {token: unused}}
contexts:
- {name: prod, context: {cluster: lab, user: reader}}
- {name: staging, context: {cluster: lab, user: reader}}
"""
APT = ["apt-get", "-y", "-q", "-o", "DPkg::Lock::Timeout=300"]


def sh(*args, env=None, timeout=300, cwd=None):
    return subprocess.run(list(args), text=True, capture_output=True, env=env, timeout=timeout, cwd=cwd)


def installed():
    return "install ok installed" in sh("dpkg-query", "-W", "-f=${Status}", "netpol-trace").stdout


def build_deb(work):
    r = sh("cpack", "--config", os.path.join(BUILD, "CPackConfig.cmake"), "-G", "DEB", "-B", work, timeout=600)
    check(r.returncode == 0, f"cpack -G DEB: exit {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
    debs = glob.glob(os.path.join(work, "netpol-trace_*.deb"))
    check(len(debs) == 1, f"cpack made {debs}, want one netpol-trace_*.deb")
    check(re.fullmatch(r"netpol-trace_0\.1\.0_[a-z0-9]+\.deb", os.path.basename(debs[0])),
          f"package file name: {os.path.basename(debs[0])}")
    return debs[0]


def check_depends(deb):
    """Every library the binary links comes from a package the .deb depends on (dpkg-shlibdeps)."""
    depends = sh("dpkg-deb", "-f", deb, "Depends").stdout
    packages = {d.strip().split()[0].split(":")[0] for alt in depends.split(",") for d in alt.split("|") if d.strip()}
    needed = re.findall(r"NEEDED\s+(\S+)", sh("objdump", "-p", BINARY).stdout)
    check(len(needed) > 3, f"objdump -p {BINARY}: NEEDED entries {needed}")
    for soname in needed:
        owners = sh("dpkg", "-S", f"*/{soname}").stdout
        names = {o.strip().split(":")[0] for line in owners.splitlines() for o in line.split(": ")[0].split(",")}
        check(names & packages, f"{soname} (from {sorted(names)}) is not in the package's Depends: {depends}")
    print(f"  Depends: {depends.strip()}", flush=True)


def check_contents(deb):
    listing = sh("dpkg-deb", "-c", deb).stdout
    for path, link in (("./usr/bin/netpol-trace", None), ("./usr/bin/kubectl-netpol_trace", "netpol-trace"),
                       ("./usr/bin/kubectl_complete-netpol_trace", "netpol-trace"),
                       ("./usr/share/man/man1/netpol-trace.1.gz", None),
                       ("./usr/share/bash-completion/completions/netpol-trace", None),
                       ("." + EXAMPLE, None)):
        pattern = re.escape(path) + (r" -> " + re.escape(link) if link else r"$")
        check(re.search(pattern, listing, re.M), f"the package has no {path}{' -> ' + link if link else ''}:\n{listing}")


def check_installed(work):
    env = {"PATH": SYSTEM_PATH, "HOME": work, "LANG": "C.UTF-8"}
    r = sh("netpol-trace", "--version", env=env)
    check(r.returncode == 0 and r.stdout.strip() == "netpol-trace 0.1.0", f"netpol-trace --version: {r}")
    check(shutil.which("netpol-trace", path=SYSTEM_PATH) == "/usr/bin/netpol-trace", "netpol-trace is not /usr/bin's")

    explain = ["--state", EXAMPLE, "--from", CHECKOUT, "--to", POSTGRES, "--port", "5432"]
    r = sh("netpol-trace", "explain", *explain, env=env)
    check(r.returncode == 1 and r.stdout.splitlines()[0] == DENIED and "LABEL_MISMATCH" in r.stdout,
          f"netpol-trace explain on the bundled example: exit {r.returncode}\n{r.stdout}{r.stderr}")

    # kubectl finds the plugin on PATH; -n before the command names the namespace of a bare pod name.
    r = sh("kubectl", "plugin", "list", env=env)
    check("/usr/bin/kubectl-netpol_trace" in r.stdout, f"kubectl plugin list: {r.stdout}{r.stderr}")
    r = sh("kubectl", "netpol-trace", "-n", "shop", "explain", "--state", EXAMPLE, "--from", "checkout-6f8d7c9b5-k8j7h",
           "--to", POSTGRES, "--port", "5432", "-o", "json", env=env)
    check(r.returncode == 1, f"kubectl netpol-trace -n shop explain: exit {r.returncode}\n{r.stdout}{r.stderr}")
    result = json.loads(r.stdout)
    check(result["verdict"] == "denied" and result["src"]["pod"] == CHECKOUT, f"kubectl netpol-trace: {result}")
    # --kubeconfig before the command reaches it: without --state, explain reads the cluster through it.
    missing = os.path.join(work, "no-such-kubeconfig")
    r = sh("kubectl", "netpol-trace", "--kubeconfig", missing, "explain", "--from", CHECKOUT, "--to", POSTGRES,
           "--port", "5432", env=env)
    check(r.returncode == 2 and missing in r.stderr and len(r.stderr.strip().splitlines()) == 1,
          f"kubectl netpol-trace --kubeconfig MISSING explain: exit {r.returncode}, want 2 and one line naming it: "
          f"{r.stderr}")
    # --context before the command reaches it too: a context the kubeconfig lacks is named, with those it has.
    kubeconfig = os.path.join(work, "kubeconfig")
    with open(kubeconfig, "w") as f:
        f.write(KUBECONFIG)
    r = sh("kubectl", "netpol-trace", "--kubeconfig", kubeconfig, "--context", "nosuch", "explain", "--from", CHECKOUT,
           "--to", POSTGRES, "--port", "5432", env=env)
    check(r.returncode == 2 and 'context "nosuch" not found (contexts: prod, staging)' in r.stderr and
          len(r.stderr.strip().splitlines()) == 1,
          f"kubectl netpol-trace --context nosuch explain: exit {r.returncode}, want 2 naming it: {r.stderr}")
    r = sh("kubectl", "netpol-trace", "--bogus", env=env)
    check(r.returncode == 2 and "kubectl netpol-trace --help" in r.stderr, f"a bad flag: {r.returncode} {r.stderr}")

    # Shell completion: kubectl asks kubectl_complete-netpol_trace; bash asks netpol-trace __complete.
    r = sh("kubectl", "__complete", "netpol-trace", "explain", "--fr", env=env)
    check(re.search(r"^--from\t", r.stdout, re.M) and ":4" in r.stdout, f"kubectl __complete netpol-trace: {r.stdout}")
    r = sh("kubectl", "__complete", "netpol-trace", "--kubeconfig", kubeconfig, "explain", "--context", "", env=env)
    check(r.stdout.splitlines() == ["prod", "staging", ":4"], f"kubectl __complete netpol-trace ... --context '': "
                                                                f"{r.stdout}")
    r = sh("kubectl", "__complete", "netpol-trace", "--context", "st", env={**env, "KUBECONFIG": kubeconfig})
    check(r.stdout.splitlines() == ["staging", ":4"], f"KUBECONFIG=... kubectl __complete netpol-trace --context st: "
                                                       f"{r.stdout}")
    r = sh("kubectl", "__complete", "netpol-trace", "", env=env)
    check({"explain", "whatif", "advise", "agent"} <= {l.split("\t")[0] for l in r.stdout.splitlines()},
          f"kubectl __complete netpol-trace '': {r.stdout}")
    script = ("[ -f /usr/share/bash-completion/bash_completion ] && . /usr/share/bash-completion/bash_completion; "
              ". /usr/share/bash-completion/completions/netpol-trace; "
              "COMP_WORDS=(netpol-trace explain -o j); COMP_CWORD=3; COMP_LINE='netpol-trace explain -o j'; "
              "COMP_POINT=${#COMP_LINE}; _netpol_trace; printf '%s\\n' \"${COMPREPLY[@]}\"")
    r = sh("bash", "-c", script, env=env)
    check(r.stdout.split() == ["json"], f"bash completion of 'netpol-trace explain -o j': {r.stdout!r} {r.stderr}")

    r = sh("man", "-w", "netpol-trace", env=env)
    check(r.stdout.strip() == "/usr/share/man/man1/netpol-trace.1.gz", f"man -w netpol-trace: {r.stdout}{r.stderr}")


def run():
    if installed():
        msg = "a netpol-trace package is installed on this machine: this test would replace and purge it"
        if os.environ.get("CI") == "true":
            raise TestFailure(msg)
        print(f"package_test: skipped: {msg}")
        sys.exit(SKIP)
    for tool in ("cpack", "dpkg-deb", "objdump", "apt-get", "kubectl", "man"):
        check(shutil.which(tool), f"{tool} is missing (scripts/setup installs it)")
    work = tempfile.mkdtemp(prefix="npt-package-")
    os.chmod(work, 0o755)  # apt's download user reads the .deb from here
    try:
        deb = build_deb(work)
        check_depends(deb)
        check_contents(deb)
        r = sh(*APT, "install", f"./{os.path.basename(deb)}", env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
               cwd=work)
        check(r.returncode == 0 and installed(), f"apt-get install ./{os.path.basename(deb)}: {r.stdout}{r.stderr}")
        print(f"  installed {os.path.basename(deb)} ({os.path.getsize(deb) // 1024} KiB)", flush=True)
        check_installed(work)
    finally:
        purge = sh(*APT, "purge", "netpol-trace", env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        shutil.rmtree(work, ignore_errors=True)
    check(not installed() and not os.path.exists("/usr/bin/netpol-trace") and
          not os.path.exists("/usr/share/bash-completion/completions/netpol-trace"),
          f"apt-get purge netpol-trace left it installed: {purge.stdout}{purge.stderr}")


if __name__ == "__main__":
    terminate_on_sigterm()
    main(run, "package_test")
