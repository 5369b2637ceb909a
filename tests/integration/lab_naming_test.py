#!/usr/bin/python3
"""The lab's CNI names against the names the CNIs' own tests and sources show (no root needed).

kube-router: pkg/controllers/netpol/network_policy_controller_test.go (v2.11.1) expects the IPv4 chain of policy
nsA/simple-egress at sync version "1" to be KUBE-NWPLCY-C23KD7UE4TAT3Y5M. Calico: felix/rules/policy_test.go (v3.32.0)
names GlobalNetworkPolicy long-policy-name-that-gets-hashed's chains cali-pi-/cali-po-_PymyFHQQg3808jiz1OJ,
libcalico-go/lib/hash/unique_id_test.go GetLengthLimitedID's cases, and
libcalico-go/lib/backend/k8s/conversion/conversion_test.go pod default/podA's interface cali7f94ce7c295.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "scripts", "lab.d"))
import lab_dataplane  # noqa: E402,F401  (first: it registers the flavours of the two below)
import lab_calico  # noqa: E402
import lab_kube_router  # noqa: E402


def expect(got, want, what):
    if got != want:
        print(f"npt_lab_naming_test: FAILED: {what}: {got!r}, expected {want!r}", file=sys.stderr)
        sys.exit(1)


def main():
    expect(lab_kube_router.network_policy_chain("nsA", "simple-egress", "1", "IPv4"), "KUBE-NWPLCY-C23KD7UE4TAT3Y5M",
           "kube-router policy chain")
    # The top-level jumps' UUIDs every kube-router node writes (ensureTopLevelChains).
    for builtin, uuid in (("INPUT", "4IA2OSFRMVNDXBVV"), ("FORWARD", "TEMCG2JMHZYE7H7T"),
                          ("OUTPUT", "VEAAIY32XVBHCSCY")):
        spec = ["-m", "comment", "--comment", "kube-router netpol", "-j", f"KUBE-ROUTER-{builtin}"]
        expect(lab_kube_router.uuid_comment(builtin, spec), uuid, f"kube-router {builtin} jump")
    for prefix in ("cali-pi-", "cali-po-"):
        expect(lab_calico.limited_id(prefix, "gnp/long-policy-name-that-gets-hashed"),
               prefix + "_PymyFHQQg3808jiz1OJ", "Calico policy chain")
    for args, want in ((("felix", "1234", 10), "felix1234"), (("felix", "123456", 11), "felix123456"),
                       (("felix", "_2345", 10), "felix_kMQI"), (("felix", "12345678910", 13), "felix_Y2QCZIS")):
        expect(lab_calico.limited_id(*args), want, f"GetLengthLimitedID{args}")
    pod = type("Pod", (), {"namespace": "default", "name": "podA"})()
    expect(lab_calico.iface(pod), "cali7f94ce7c295", "Calico interface")
    print("npt_lab_naming_test: passed")


if __name__ == "__main__":
    main()
