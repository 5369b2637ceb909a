#!/usr/bin/python3
"""The lab and the tail tests leave nothing behind, also when a test fails.

1. tail_dataplane_test (tc dataplane: namespaces, veths, a bridge, iptables, qdiscs, a BPF program) is run with a
   failure injected after the tail attached and the traffic ran: it must fail, and afterwards its namespaces, its
   run directory, its tail process and its tc program must be gone.
2. scripts/lab up twice and down twice: idempotent, and nothing of the lab ever appears in the host's namespace.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import HERE, OCTETS, Lab, check, main, test_prefix  # noqa: E402

PREFIX = test_prefix("npttail-teardown")
LAB_NAMES = ("cni0", "uplink0", "cali", "KUBE-ROUTER-FORWARD", "KUBE-SERVICES", "cali-FORWARD", "netpol_lab",
             "pod_policy", f"10.{OCTETS['teardown']}.", f"fd00:{OCTETS['teardown']}:")


def out(*cmd):
    return subprocess.run(cmd, text=True, capture_output=True).stdout


def host_view():
    """The host namespace's links, addresses, routes, rules and qdiscs."""
    return "".join(out(*c) for c in (["ip", "-o", "link"], ["ip", "-o", "addr"], ["ip", "route"],
                                     ["ip", "-6", "route"], ["nft", "list", "ruleset"], ["iptables-nft-save"],
                                     ["ip6tables-nft-save"], ["iptables-legacy-save"], ["tc", "qdisc", "show"]))


def lab_traces(view: str):
    return sorted({name for name in LAB_NAMES if name in view})


def netns_with_prefix():
    return [n.split()[0] for n in out("ip", "netns", "list").splitlines() if n.startswith(PREFIX + "-")]


def tc_programs_of(node_ns: str):
    shown = out("ip", "netns", "exec", node_ns, "tc", "-j", "filter", "show", "block", "1", "ingress")
    return [f["options"]["prog"]["id"] for f in json.loads(shown or "[]") if "options" in f]


def run():
    before = lab_traces(host_view())

    # 1. An injected failure in the middle of a dataplane test.
    record = tempfile.NamedTemporaryFile(prefix="npt-teardown-", suffix=".json", delete=False).name
    try:
        env = {**os.environ, "NPT_TAIL_TEST_PREFIX": PREFIX, "NPT_TAIL_TEST_OCTET": str(OCTETS["teardown"]),
               "NPT_TAIL_TEST_INJECT": "fail", "NPT_TAIL_TEST_RECORD": record}
        r = subprocess.run([sys.executable, os.path.join(HERE, "tail_dataplane_test.py"), "--dataplane", "tc"],
                           env=env, text=True, capture_output=True, timeout=120)
        check(r.returncode == 1 and "injected failure" in r.stderr,
              f"the injected failure did not fail the test: exit {r.returncode}\n{r.stdout}{r.stderr}")
        with open(record) as f:
            created = json.load(f)
    finally:
        os.unlink(record)
    check(not netns_with_prefix(), f"namespaces left after a failed test: {netns_with_prefix()}")
    check(not os.path.exists(f"/run/netpol-trace-lab/{PREFIX}"), "the lab's run directory was left behind")
    check(not os.path.exists(f"/proc/{created['tail_pid']}") or
          "netpol-trace" not in open(f"/proc/{created['tail_pid']}/cmdline").read(),
          f"the tail (pid {created['tail_pid']}) still runs")

    # 2. up, up, down, down; the tc program is gone with the node namespace.
    with Lab("tc", PREFIX, OCTETS["teardown"]) as lab:
        first = tc_programs_of(lab.config["node"])
        lab.run("up", "--dataplane", "tc")
        check(len(netns_with_prefix()) == len(lab.status()["pods"]) + 1, f"second up: {netns_with_prefix()}")
        programs = tc_programs_of(lab.config["node"])
        check(len(programs) == 1, f"tc programs on the lab's block: {programs}")
        check(lab_traces(host_view()) == before, f"the lab shows in the host namespace: {lab_traces(host_view())}")
    # The kernel dismantles a deleted namespace in a work queue and frees the program after an RCU grace period:
    # on a busy machine that takes a moment after `ip netns del` returns.
    deadline = time.monotonic() + 15
    while (subprocess.run(["bpftool", "prog", "show", "id", str(programs[0])], capture_output=True).returncode == 0
           and time.monotonic() < deadline):
        time.sleep(0.2)
    check(subprocess.run(["bpftool", "prog", "show", "id", str(programs[0])], capture_output=True).returncode != 0,
          f"the lab's tc program {programs[0]} outlived its namespace by 15 s")
    check(first != programs, "the second up reused the first lab's program")
    again = lab.run("down")
    check("0 namespaces removed" in again.stdout, f"second down: {again.stdout}")
    check("not running" in lab.run("status").stdout, "status after down")
    check(not netns_with_prefix(), f"namespaces left: {netns_with_prefix()}")
    check(lab_traces(host_view()) == before, f"the lab left traces in the host namespace: {lab_traces(host_view())}")
    print(f"failed test cleaned up {len(created['netns'])} namespaces; up/up/down/down idempotent")


if __name__ == "__main__":
    main(run, "tail_teardown_test")
