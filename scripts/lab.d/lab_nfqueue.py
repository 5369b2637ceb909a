#!/usr/bin/python3
"""The lab's kube-network-policies agent: the verdict half of its dataplane, in the node's network namespace.

  lab_nfqueue.py --prefix P --octet N --run-dir DIR [--queue 100] [--label-mark MARK]

Binds NFQUEUE 100 on a raw NETLINK_NETFILTER socket the way pkg/dataplane/controller.go (Controller.Run, through
github.com/florianl/go-nfqueue) does: copy mode packet, 128 bytes (headers only), flags GSO and FAIL_OPEN, at most
1024 packets queued. For each queued packet it decides with lab_cluster.PacketEvaluator (NetworkPolicy and the
ClusterNetworkPolicy tiers over the lab's state) and answers NF_ACCEPT, with the conntrack label the source sets on
accepted connections, or NF_DROP.

The label travels in the verdict's NFQA_CT, which the kernel applies only when built with
CONFIG_NETFILTER_NETLINK_GLUE_CT; without it NFQA_CT is ignored, no connection is ever labelled and every reply is
queued and judged as a new packet against the client's ingress. The agent probes for the glue when it binds; where it
is missing, an accepted packet also gets --label-mark in its packet mark (NFQA_MARK needs no glue), which a rule of the
lab copies into the label after the queue (lab_dataplane.KubeNetworkPolicies).

Control: a Unix stream socket DIR/knp.sock, one JSON request and one JSON answer per line: {"op": "ping"} (ready,
counters), {"op": "stale", "add": true|false, "src", "dst", "protocol", "port"} (drop that flow whatever the policies
say: a policy view older than the state, the established-connection case). The process writes DIR/knp-agent.pid and
exits when that file is gone or names another process (the lab was taken down).
"""
from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lab_cluster import Cluster, PacketEvaluator  # noqa: E402

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLA_F_NESTED = 0x8000
# include/uapi/linux/netfilter/nfnetlink_queue.h
NFQA_PACKET_HDR, NFQA_VERDICT_HDR, NFQA_MARK, NFQA_PAYLOAD, NFQA_CT = 1, 2, 3, 10, 11
NFQA_CFG_CMD, NFQA_CFG_PARAMS, NFQA_CFG_QUEUE_MAXLEN, NFQA_CFG_MASK, NFQA_CFG_FLAGS = 1, 2, 3, 4, 5
NFQNL_CFG_CMD_BIND, NFQNL_CFG_CMD_PF_BIND, NFQNL_CFG_CMD_PF_UNBIND = 1, 3, 4
NFQNL_COPY_PACKET = 2
NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_CONNTRACK, NFQA_CFG_F_GSO = 1, 2, 4
CTA_LABELS = 22  # include/uapi/linux/netfilter/nfnetlink_conntrack.h
NF_DROP, NF_ACCEPT = 0, 1

# Config.CTLabelAccept = 100 through generateLabelMask (pkg/dataplane/conntrack.go): byte 15 - 100/8 = 3 holds bit
# 100 % 8 = 4. The kernel reads the 16 bytes as host-order words, so on little-endian machines this is nft's
# "ct label 28" (the lab's rules say so).
CT_LABEL_ACCEPT = bytes([0, 0, 0, 0x10] + [0] * 12)
PROTOCOLS = {6: "TCP", 17: "UDP", 132: "SCTP"}


def nla(kind: int, data: bytes) -> bytes:
    n = 4 + len(data)
    return struct.pack("=HH", n, kind) + data + b"\0" * ((4 - n % 4) % 4)


def parse_nla(buf: bytes) -> dict:
    out, off = {}, 0
    while off + 4 <= len(buf):
        n, kind = struct.unpack_from("=HH", buf, off)
        if n < 4:
            break
        out[kind & 0x3fff] = buf[off + 4:off + n]
        off += (n + 3) & ~3
    return out


def parse_packet(b: bytes):
    """(src, dst, protocol name or None, source port, destination port) of an IPv4/IPv6 packet, as
    pkg/network/packet.go ParsePacket reads it (IPv6 extension headers skipped, non-first fragments without ports)."""
    if len(b) < 20:
        raise ValueError("packet too short")
    version = b[0] >> 4
    if version == 4:
        off = (b[0] & 0x0f) * 4
        if off < 20 or off >= len(b):
            raise ValueError("corrupted IPv4 header")
        src, dst, proto = str(ipaddress.IPv4Address(b[12:16])), str(ipaddress.IPv4Address(b[16:20])), b[9]
    elif version == 6:
        if len(b) < 48:
            raise ValueError("packet too short")
        src, dst = str(ipaddress.IPv6Address(b[8:24])), str(ipaddress.IPv6Address(b[24:40]))
        proto, off = b[6], 40
        while proto in (0, 43, 60):  # hop-by-hop, routing, destination options
            proto, off = b[off], off + 8 + b[off + 1] * 8
            if off + 8 >= len(b):
                raise ValueError("packet too short")
        if proto == 44:  # fragment: only the first one has the transport header
            if struct.unpack_from("!H", b, off + 2)[0] & 0xfff8:
                return src, dst, None, 0, 0
            proto, off = b[off], off + 8
    else:
        raise ValueError(f"unknown IP version {version}")
    name = PROTOCOLS.get(proto)
    if name is None:
        return src, dst, None, 0, 0
    if off + 4 > len(b):
        raise ValueError("incomplete transport header")
    sport, dport = struct.unpack_from("!HH", b, off)
    return src, dst, name, sport, dport


class Queue:
    def __init__(self, num: int):
        self.num = num
        self.seq = 0
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
        try:  # a burst of first packets (scripts/lab check opens hundreds of connections at once) must not overflow
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 4 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((0, 0))

    def _send(self, msg_type: int, flags: int, res_id: int, attrs: bytes) -> int:
        self.seq += 1
        body = struct.pack("!BBH", socket.AF_UNSPEC, 0, res_id) + attrs
        hdr = struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg_type, flags, self.seq, 0)
        self.sock.send(hdr + body)
        return self.seq

    def config(self, attrs: bytes, res_id: int):
        """One NFQNL_MSG_CONFIG with an acknowledgement; raises OSError with the kernel's errno."""
        seq = self._send(NFQNL_MSG_CONFIG, NLM_F_REQUEST | NLM_F_ACK, res_id, attrs)
        while True:
            data = self.sock.recv(65536)
            off = 0
            while off + 16 <= len(data):
                n, kind, _, mseq, _ = struct.unpack_from("=IHHII", data, off)
                if kind == NLMSG_ERROR and mseq == seq:
                    err = struct.unpack_from("=i", data, off + 16)[0]
                    if err:
                        raise OSError(-err, os.strerror(-err))
                    return
                off += (n + 3) & ~3

    def bind(self) -> bool:
        """Binds the queue as go-nfqueue's RegisterWithErrorFunc does; returns whether the kernel can attach
        conntrack data to queue messages (CONFIG_NETFILTER_NETLINK_GLUE_CT), without which a verdict's NFQA_CT
        (the accepted connection's label) is ignored."""
        for cmd, res in ((NFQNL_CFG_CMD_PF_UNBIND, 0), (NFQNL_CFG_CMD_PF_BIND, 0), (NFQNL_CFG_CMD_BIND, self.num)):
            self.config(nla(NFQA_CFG_CMD, struct.pack("!BxH", cmd, socket.AF_UNSPEC)), res)
        self.config(nla(NFQA_CFG_PARAMS, struct.pack("!IB", 128, NFQNL_COPY_PACKET)), self.num)
        flags = struct.pack("!I", NFQA_CFG_F_GSO | NFQA_CFG_F_FAIL_OPEN)
        self.config(nla(NFQA_CFG_FLAGS, flags) + nla(NFQA_CFG_MASK, flags) +
                    nla(NFQA_CFG_QUEUE_MAXLEN, struct.pack("!I", 1024)), self.num)
        # The probe: nfqnl_recv_config refuses the conntrack flag (EOPNOTSUPP) when the glue is not built in. Turned
        # off again at once: kube-network-policies does not ask for conntrack data.
        ct = struct.pack("!I", NFQA_CFG_F_CONNTRACK)
        try:
            self.config(nla(NFQA_CFG_FLAGS, ct) + nla(NFQA_CFG_MASK, ct), self.num)
        except OSError as e:
            if e.errno != errno.EOPNOTSUPP:
                raise
            return False
        self.config(nla(NFQA_CFG_FLAGS, struct.pack("!I", 0)) + nla(NFQA_CFG_MASK, ct), self.num)
        return True

    def verdict(self, packet_id: int, verdict: int, label: bool, mark=None):
        attrs = nla(NFQA_VERDICT_HDR, struct.pack("!II", verdict, packet_id))
        if mark is not None:
            attrs += nla(NFQA_MARK, struct.pack("!I", mark))
        if label:  # nfqueue.WithLabel: CTA_LABELS alone (no mask) nested in NFQA_CT
            attrs += nla(NFQA_CT | NLA_F_NESTED, nla(CTA_LABELS, CT_LABEL_ACCEPT))
        self._send(NFQNL_MSG_VERDICT, NLM_F_REQUEST, self.num, attrs)

    def packets(self, log):
        """(packet id, packet mark, payload) of every queued packet in one receive; errors the kernel returned for
        verdicts go to log."""
        try:
            data = self.sock.recv(1 << 20)
        except OSError as e:
            if e.errno == errno.ENOBUFS:  # messages lost; with FAIL_OPEN the kernel accepted those packets
                return []
            raise
        out, off = [], 0
        while off + 16 <= len(data):
            n, kind, _, _, _ = struct.unpack_from("=IHHII", data, off)
            if n < 16:
                break
            if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
                attrs = parse_nla(data[off + 20:off + n])
                if NFQA_PACKET_HDR in attrs:
                    mark = struct.unpack("!I", attrs[NFQA_MARK])[0] if NFQA_MARK in attrs else 0
                    out.append((struct.unpack_from("!I", attrs[NFQA_PACKET_HDR])[0], mark,
                                attrs.get(NFQA_PAYLOAD, b"")))
            elif kind == NLMSG_ERROR:
                err = struct.unpack_from("=i", data, off + 16)[0]
                if err:
                    log(f"verdict refused by the kernel: {os.strerror(-err)}")
            off += (n + 3) & ~3
        return out


class Agent:
    def __init__(self, args):
        self.run_dir = args.run_dir
        self.pidfile = os.path.join(args.run_dir, "knp-agent.pid")
        self.engine = PacketEvaluator(Cluster(args.prefix, args.octet, cluster_policies=True).state()["items"])
        self.queue = Queue(args.queue)
        self.label_mark = args.label_mark
        self.stale = set()  # (src, dst, protocol, port)
        self.counts = {"accepted": 0, "dropped": 0}
        self.ct_glue = None

    def log(self, text: str):
        print(f"{time.strftime('%H:%M:%S')} {text}", flush=True)

    def decide(self, packet_id: int, mark: int, payload: bytes):
        try:
            src, dst, proto, sport, dport = parse_packet(payload)
        except (ValueError, IndexError, struct.error) as e:  # as upstream: the default policy, FailOpen
            self.log(f"id={packet_id}: cannot parse ({e}): accept")
            self.queue.verdict(packet_id, NF_ACCEPT, label=False)
            return
        if (src, dst, proto, dport) in self.stale:
            allowed, why = False, "stale: a policy view older than the state"
        else:
            d = self.engine.evaluate(src, dst, proto, dport)
            allowed, why = d.allowed, str(d)
        self.counts["accepted" if allowed else "dropped"] += 1
        if not allowed:
            self.log(f"id={packet_id} {proto or '-'} [{src}]:{sport} -> [{dst}]:{dport}: {why}")
        # The verdict replaces the whole packet mark: keep the bits others set (kube-proxy's 0x4000).
        glue_mark = mark | self.label_mark if allowed and not self.ct_glue and self.label_mark else None
        self.queue.verdict(packet_id, NF_ACCEPT if allowed else NF_DROP, label=allowed, mark=glue_mark)

    def control(self, req: dict) -> dict:
        if req.get("op") == "ping":
            return {"ok": True, "queue": self.queue.num, "ct_glue": self.ct_glue, **self.counts}
        if req.get("op") == "stale":
            key = (str(ipaddress.ip_address(req["src"])), str(ipaddress.ip_address(req["dst"])),
                   req["protocol"].upper(), int(req["port"]))
            (self.stale.add if req.get("add") else self.stale.discard)(key)
            return {"ok": True}
        return {"ok": False, "error": f"unknown request {req!r}"}

    def owned(self) -> bool:
        try:
            with open(self.pidfile) as f:
                return f.read().strip() == str(os.getpid())
        except OSError:
            return False

    def run(self):
        self.ct_glue = self.queue.bind()
        ctl_path = os.path.join(self.run_dir, "knp.sock")
        try:
            os.unlink(ctl_path)
        except FileNotFoundError:
            pass
        ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        ctl.bind(ctl_path)
        ctl.listen(8)
        with open(self.pidfile + ".tmp", "w") as f:
            f.write(f"{os.getpid()}\n")
        os.rename(self.pidfile + ".tmp", self.pidfile)
        self.log(f"queue {self.queue.num} bound (copy packet 128, GSO, FAIL_OPEN); conntrack glue for verdict "
                 f"labels: {'yes' if self.ct_glue else 'no (NFQA_CT is ignored by this kernel)'}")
        clients = []
        checked = time.monotonic()
        while True:
            readable, _, _ = select.select([self.queue.sock, ctl, *clients], [], [], 1.0)
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                if not self.owned():
                    self.log("pid file gone: the lab is down")
                    return
            for s in readable:
                if s is self.queue.sock:
                    for packet_id, mark, payload in self.queue.packets(self.log):
                        self.decide(packet_id, mark, payload)
                elif s is ctl:
                    conn, _ = ctl.accept()
                    clients.append(conn)
                else:
                    line = b""
                    try:
                        line = s.recv(4096)
                        if line:
                            s.sendall((json.dumps(self.control(json.loads(line))) + "\n").encode())
                    except (OSError, ValueError, KeyError) as e:
                        try:
                            s.sendall((json.dumps({"ok": False, "error": str(e)}) + "\n").encode())
                        except OSError:
                            pass
                    if not line:
                        clients.remove(s)
                        s.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--octet", type=int, required=True)
    ap.add_argument("--run-dir", required=True)
    ap.add_argument("--queue", type=int, default=100)
    ap.add_argument("--label-mark", type=lambda x: int(x, 0), default=0,
                    help="packet mark bit for accepted packets when the kernel ignores the verdict's label")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    Agent(args).run()


if __name__ == "__main__":
    main()
