#!/usr/bin/python3
"""What the live tail keeps out: other namespaces' drops (--namespace), other pods' (--pod), and, in the kernel, every
drop whose addresses are not watched (the IP filter map), so they never reach the ring buffer.

Three tails watch the same traffic (every runbook case in IPv4 and IPv6, plus 64 UDP flows between two pods outside
shop): `-n shop --duration` (it also ends by itself), `--pod shop/<checkout>`, and one without a filter, which shows
that the filtered drops did happen.
"""
import os
import re
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tail_support import OCTETS, Lab, Tail, check, index_lines, lab_ips, lab_tail_args, main, test_prefix  # noqa: E402

CHECKOUT = "shop/checkout-6f8d7c9b5-k8j7h"


def pods_of(line):
    return {x.get("pod") for x in (line["src"], line["dst"]) if x.get("pod")}


def run():
    with Lab("kube-router", test_prefix("npttail-scope"), OCTETS["scope"]) as lab:
        ips = lab_ips(lab)
        shop = Tail(lab_tail_args(lab, ["shop"], ["--duration", "6", "--debug"]), "shop")
        one_pod = Tail(lab_tail_args(lab, [], ["--pod", CHECKOUT, "--duration", "60"]), "pod")
        everything = Tail(lab_tail_args(lab, [], ["--duration", "60"]), "all")
        with shop, one_pod, everything:
            flows = lab.traffic("all", "noise")
            all_lines = everything.stop()
            pod_lines = one_pod.stop(grace=0)
            shop_lines = shop.wait(timeout=20)  # --duration ends it
            shop_stderr = shop.stderr()

        check(all(f["sent"] == f["count"] for f in flows), f"the lab did not send everything: {flows}")

        # -n shop: only flows with a shop pod at one end, and all of those.
        check(shop_lines, "-n shop reported nothing")
        for line in shop_lines:
            check(any(p.startswith("shop/") for p in pods_of(line)),
                  f"-n shop reported a flow of other namespaces: {line['from']} -> {line['to']}:{line['port']}")
        shop_flows = index_lines(shop_lines, ips)
        want = [f for f in flows if f["src"].startswith("shop/")]
        check(len(want) == 6, f"expected 6 shop flows in the traffic, got {len(want)}")
        check(len(shop_flows) == len(want), f"-n shop: {len(shop_flows)} flows reported, want {len(want)}: "
                                            f"{sorted(shop_flows)}")
        for key, events in shop_flows.items():
            check(len(events["drop"]) == 1 and len(events["summary"]) == 1, f"-n shop: {key}: {events.keys()}")
            check(events["summary"][0]["count"] == 3, f"-n shop: {key}: count {events['summary'][0]['count']}")

        # The kernel filter: the 64+64 noise flows and the other namespaces' cases never became events.
        m = re.search(r"capture stats: (\d+) events, (\d+) lost, (\d+) flows tracked", shop_stderr)
        check(m, f"no capture stats in --debug output: {shop_stderr}")
        events, lost, tracked = map(int, m.groups())
        reported = sum(1 for x in shop_lines if x["event"] in ("drop", "resumed"))
        check(events <= 2 * reported and tracked <= 2 * len(want),
              f"the kernel passed {events} events and tracks {tracked} flows for {reported} reported drops: "
              f"unwatched drops were not filtered in the kernel")
        check(lost == 0, f"{lost} events lost")

        # --pod: only the checkout pod's flows (the label-mismatch case).
        pod_flows = index_lines(pod_lines, ips)
        check(pod_lines and all(CHECKOUT in pods_of(x) for x in pod_lines),
              f"--pod {CHECKOUT} reported other pods: {[(x['from'], x['to']) for x in pod_lines]}")
        check(len(pod_flows) == 2, f"--pod: {len(pod_flows)} flows, want the 2 label-mismatch flows")

        # Without a filter the same run shows everything the lab dropped, noise included.
        every = index_lines(all_lines, ips)
        noise = [k for k in every if k[3] >= 20000]
        check(len(noise) == 128, f"unfiltered tail saw {len(noise)} of the 128 noise flows")
        check(all(every[k]["summary"][0]["count"] == 1 for k in noise), "noise flows: count != 1")
        check(len(every) == len(noise) + 10, f"unfiltered tail: {len(every) - len(noise)} case flows, want 10")
        print(f"-n shop: {len(shop_flows)} flows, kernel events {events}; --pod: {len(pod_flows)}; unfiltered: "
              f"{len(every)}")


if __name__ == "__main__":
    main(run, "tail_scope_test")
