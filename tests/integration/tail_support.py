"""Shared pieces of the live-tail integration tests (tests/integration/tail_*_test.py).

The tests drive the real binary against the network-namespace lab (scripts/lab): bring up a lab instance of their
own (prefix and address octet of their own), start `netpol-trace -o json --ready-file`, send a case's bounded
traffic once the file exists, stop the tail, and assert on its JSON lines. Everything they create is removed in
`finally` blocks, and a leftover of a killed run is removed when the same test starts again.

Environment (set by tests/integration/tail.cmake): NPT_BINARY, NPT_LAB, NPT_LAB_TC_OBJ (optional).
"""
import ipaddress
import json
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BINARY = os.environ.get("NPT_BINARY", os.path.join(ROOT, "build", "netpol-trace"))
LAB = os.environ.get("NPT_LAB", os.path.join(ROOT, "scripts", "lab"))
SKIP = 77  # SKIP_RETURN_CODE in tail.cmake



def test_octet(octet: int) -> int:
    """A test's address octet, moved by NPT_TEST_OCTET_SHIFT (default 0): where other labs run on the machine with
    the tests' octets, the tests can take others."""
    return octet + int(os.environ.get("NPT_TEST_OCTET_SHIFT", "0"))


def test_prefix(prefix: str) -> str:
    """A test's lab prefix ("npttail-kr"), its "npt" replaced by NPT_TEST_LAB_PREFIX when set: labs of two
    checkouts, or of the tests and a developer, stay apart."""
    return (os.environ.get("NPT_TEST_LAB_PREFIX", "npt") + prefix[3:])[:24]


# Address octets per test: instances never share addresses, so one test's drops cannot be attributed by another's
# tail (the kernel program sees every drop of the host). 230-241 are the tail's and the agent's tests (agent_test.py:
# 241); 170-179 are for the tests of what ships: 170 the agent image on the lab (image_test.py).
OCTETS = {k: test_octet(v) for k, v in {"kube-router": 231, "kube-router-legacy": 232, "calico": 233, "nftables": 234,
                                        "tc": 235, "pod": 236, "scope": 237, "teardown": 238, "live-view": 239,
                                        "cluster-policy": 230, "image": 170}.items()}


class TestFailure(AssertionError):
    pass


def require_root(what: str):
    """Root tests: skipped (exit 77) when not root, except under CI=true where a skip is a failure."""
    if os.geteuid() == 0:
        return
    if os.environ.get("CI") == "true":
        print(f"{what}: needs root (network namespaces, BPF); CI=true forbids skipping", file=sys.stderr)
        sys.exit(1)
    print(f"{what}: skipped: needs root (network namespaces, BPF)")
    sys.exit(SKIP)


def terminate_on_sigterm():
    """ctest's TIMEOUT sends SIGTERM first: turn it into an exception so the finally blocks tear the lab down."""
    def handler(signum, frame):
        raise SystemExit(f"terminated by signal {signum}")
    signal.signal(signal.SIGTERM, handler)


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def norm_ip(ip):
    return str(ipaddress.ip_address(ip))


class Lab:
    """One scripts/lab instance: `with Lab("calico", "npttail-calico", 233) as lab: ...`."""

    def __init__(self, dataplane: str, prefix: str, octet: int, env=None):
        self.dataplane, self.prefix, self.octet = dataplane, prefix, octet
        self.env = {**os.environ, "NPT_LAB_PREFIX": prefix, "NPT_LAB_OCTET": str(octet), **(env or {})}
        self.config = None

    def run(self, *args, check_rc=True, timeout=120):
        r = subprocess.run([sys.executable, LAB, *args], env=self.env, text=True, capture_output=True,
                           timeout=timeout)
        if check_rc and r.returncode != 0:
            raise TestFailure(f"scripts/lab {' '.join(args)}: exit {r.returncode}\n{r.stdout}{r.stderr}")
        return r

    def __enter__(self):
        self.run("down")  # a leftover of a killed run
        self.config = json.loads(self.run("up", "--dataplane", self.dataplane, "--json").stdout)
        return self

    def __exit__(self, *exc):
        self.run("down", check_rc=exc[0] is None)
        return False

    @property
    def state(self):
        return self.config["state"]

    @property
    def namespaces(self):
        return self.config["namespaces"]

    def traffic(self, *cases, family="all", count=3):
        r = self.run("traffic", *cases, "--family", family, "--count", str(count), "--json")
        return json.loads(r.stdout)

    def status(self):
        return json.loads(self.run("status", "--json").stdout)


class Tail:
    """netpol-trace's live tail as a child process; `lines()` after `stop()` or `wait()`. With `netns`, it runs in
    that network namespace (ip netns exec: the process keeps the pid)."""

    def __init__(self, args, name="tail", netns=None):
        self.args, self.name = args, name
        self.wrapper = ["ip", "netns", "exec", netns] if netns else []
        self.dir = None
        self.proc = None

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix=f"npt-{self.name}-")
        self.ready = os.path.join(self.dir, "ready")
        self.stdout_path = os.path.join(self.dir, "stdout")
        self.stderr_path = os.path.join(self.dir, "stderr")
        try:
            with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
                self.proc = subprocess.Popen([*self.wrapper, BINARY, *self.args, "--ready-file", self.ready],
                                             stdout=out, stderr=err)
            deadline = time.monotonic() + 30
            while not os.path.exists(self.ready):
                if self.proc.poll() is not None:
                    raise TestFailure(f"netpol-trace exited ({self.proc.returncode}) before attaching: "
                                      f"{self.stderr()}")
                if time.monotonic() > deadline:
                    raise TestFailure(f"netpol-trace did not attach within 30 s: {self.stderr()}")
                time.sleep(0.05)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        return False

    def stop(self, grace=0.5):
        """SIGINT after `grace` seconds (drops still in flight land in the kernel map first)."""
        time.sleep(grace)
        self.proc.send_signal(signal.SIGINT)
        return self.wait()

    def wait(self, timeout=30):
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise TestFailure("netpol-trace did not exit")
        check(rc == 0, f"netpol-trace exited {rc}: {self.stderr()}")
        return self.lines()

    def lines(self):
        out = []
        with open(self.stdout_path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise TestFailure(f"stdout line {n} is not JSON ({e}): {line!r}")
        return out

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()


FAKE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fake-apiserver", "fake_apiserver.py")


class Agent:
    """`netpol-trace agent` as a child process on a free loopback port."""

    def __init__(self, work, name, kubeconfig, args=()):
        self.name, self.kubeconfig, self.args = name, kubeconfig, list(args)
        self.ready = os.path.join(work, f"{name}.ready")
        self.stderr_path = os.path.join(work, f"{name}.stderr")
        self.proc = None
        self.port = None

    def __enter__(self):
        if os.path.exists(self.ready):
            os.unlink(self.ready)  # an earlier run's
        with open(self.stderr_path, "w") as err:
            self.proc = subprocess.Popen([BINARY, "agent", "--listen", "127.0.0.1:0", "--node", self.name,
                                          "--kubeconfig", self.kubeconfig, "--ready-file", self.ready, "--debug",
                                          *self.args],
                                         stdout=subprocess.DEVNULL, stderr=err)
        # The port is known as soon as the listener is bound, before the agent is ready.
        deadline = time.monotonic() + 20
        while self.port is None:
            m = re.search(r"serving http://127\.0\.0\.1:(\d+)", self.stderr())
            if m:
                self.port = int(m.group(1))
                break
            check(self.proc.poll() is None, f"agent {self.name} exited ({self.proc.returncode}): {self.stderr()}")
            check(time.monotonic() < deadline, f"agent {self.name} did not listen: {self.stderr()}")
            time.sleep(0.05)
        return self

    def wait_ready(self, timeout=60):
        deadline = time.monotonic() + timeout
        while not os.path.exists(self.ready):
            check(self.proc.poll() is None, f"agent {self.name} exited ({self.proc.returncode}): {self.stderr()}")
            check(time.monotonic() < deadline, f"agent {self.name} not ready in {timeout} s: {self.stderr()}")
            time.sleep(0.05)

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return False

    def stop(self):
        self.proc.terminate()
        rc = self.proc.wait(timeout=15)
        check(rc == 0, f"agent {self.name} exited {rc} on SIGTERM: {self.stderr()}")

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def get(self, path, timeout=10):
        """(status, body) of a GET."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name, labels=None):
        """The value of one sample of /metrics (None when absent)."""
        _, text = self.get("/metrics")
        for line in text.splitlines():
            m = re.match(r"(\w+)(?:\{(.*)\})? (\S+)$", line)
            if m and m.group(1) == name and \
                    dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or "")) == (labels or {}):
                return float(m.group(3))
        return None

    def drops(self, series):
        """The value of netpol_trace_drops_total for exactly these labels (0 when absent)."""
        _, text = self.get("/metrics")
        for line in text.splitlines():
            m = re.match(r"netpol_trace_drops_total\{(.*)\} (\d+)$", line)
            if not m:
                continue
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1)))
            if labels == series:
                return int(m.group(2))
        return 0



class FakeApiServer:
    """tests/fake-apiserver/fake_apiserver.py on a port of its own, TLS, bearer token lab-token."""

    def __init__(self, workdir):
        self.dir = workdir
        self.proc = None

    def __enter__(self):
        certs = os.path.join(self.dir, "certs")
        subprocess.run([sys.executable, FAKE, "--gen-certs", certs], check=True, capture_output=True)
        ready = os.path.join(self.dir, "api-ready")
        self.proc = subprocess.Popen([sys.executable, FAKE, "--certs", certs, "--ready-file", ready,
                                      "--token", "lab-token=sre", "--exit-with-parent"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while not os.path.exists(ready):
            check(self.proc.poll() is None, "the fake API server exited at start")
            check(time.monotonic() < deadline, "the fake API server did not start")
            time.sleep(0.05)
        with open(ready) as f:
            self.port = int(f.read().strip())
        self.ca = os.path.join(certs, "ca.crt")
        self.server = f"https://127.0.0.1:{self.port}"
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        return False

    def control(self, op, body):
        ctx = ssl.create_default_context(cafile=self.ca)
        req = urllib.request.Request(f"{self.server}/_control/{op}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            check(r.status == 200, f"/_control/{op}: {r.status}")

    def kubeconfig(self):
        path = os.path.join(self.dir, "kubeconfig")
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
current-context: lab
clusters:
- name: lab
  cluster: {{server: "{self.server}", certificate-authority: "{self.ca}"}}
users:
- name: sre
  user: {{token: lab-token}}
contexts:
- name: lab
  context: {{cluster: lab, user: sre}}
""")
        return path


def lab_tail_args(lab: Lab, namespaces=None, extra=()):
    args = ["-o", "json", "--state", lab.state, "--node", lab.config["node"]]
    for ns in (lab.namespaces if namespaces is None else namespaces):
        args += ["-n", ns]
    return args + list(extra)


def flow_key(src_ip, dst_ip, protocol, port):
    return (norm_ip(src_ip), norm_ip(dst_ip), protocol.upper(), int(port))


def line_key(line):
    return flow_key(line["src"]["ip"], line["dst"]["ip"], line["protocol"], line["port"])


def index_lines(lines, lab_ips):
    """{flow key: {"drop": [...], "resumed": [...], "summary": [...], "rule": [...]}} for lines touching the lab's
    addresses."""
    out = {}
    for line in lines:
        if norm_ip(line["src"]["ip"]) not in lab_ips and norm_ip(line["dst"]["ip"]) not in lab_ips:
            continue
        events = out.setdefault(line_key(line), {"drop": [], "resumed": [], "summary": [], "rule": []})
        events[line["event"]].append(line)
    return out


def lab_ips(lab: Lab):
    st = lab.status()
    ips = set()
    for p in st["pods"]:
        ips |= {norm_ip(p["ipv4"]), norm_ip(p["ipv6"])}
    for s in st["services"]:
        ips |= {norm_ip(s["ipv4"]), norm_ip(s["ipv6"])}
    return ips


def main(test, name):
    """Runs test(); prints one verdict line; exit 0 / 1."""
    require_root(name)
    terminate_on_sigterm()
    started = time.monotonic()
    try:
        test()
    except TestFailure as e:
        print(f"{name}: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"{name}: passed in {time.monotonic() - started:.1f} s")
