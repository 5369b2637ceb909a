"""Sockets inside the lab's pods, from one process: a socket belongs to the network namespace its creating thread was
in, so the lab enters a pod's namespace (setns) only to create a socket and sends from wherever it runs. No process
per pod, no listener left behind: everything here ends with the `with` block or the call.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import select
import socket
import threading
import time

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

# A DNS query for kubernetes.default.svc.cluster.local, type A: what a resolver sends on UDP/53.
DNS_QUERY = (b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x0akubernetes\x07default\x03svc\x07cluster"
             b"\x05local\x00\x00\x01\x00\x01")


def payload(port: int) -> bytes:
    return DNS_QUERY if port == 53 else b"netpol-trace lab\n"


def _setns(fd: int):
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"setns: {os.strerror(e)}")


@contextlib.contextmanager
def netns(name: str):
    """This thread in network namespace `name` (from `ip netns add`) for the block."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def family_of(ip: str):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def pod_socket(ns: str, family, kind) -> socket.socket:
    with netns(ns):
        return socket.socket(family, kind)


def _errname(code: int) -> str:
    return errno.errorcode.get(code, str(code))


def send_udp(ns: str, dst: str, port: int, count: int, interval: float = 0.02, port_step: bool = False) -> dict:
    """`count` datagrams from one unconnected socket (an ICMP error from a REJECT rule does not fail the next
    sendto). A drop in the pod's own OUTPUT hook shows as EPERM: the packet was built and dropped, so it counts."""
    sent, errors = 0, {}
    with pod_socket(ns, family_of(dst), socket.SOCK_DGRAM) as s:
        for i in range(count):
            p = port + i if port_step else port
            try:
                s.sendto(payload(p), (dst, p))
                sent += 1
            except OSError as e:
                errors[_errname(e.errno)] = errors.get(_errname(e.errno), 0) + 1
                if e.errno == errno.EPERM:
                    sent += 1
            if interval:
                time.sleep(interval)
    return {"sent": sent, "errors": errors}


def tcp_attempts(ns: str, dst: str, port: int, count: int, timeout: float = 0.3) -> dict:
    """`count` connection attempts, each abandoned after `timeout` (below the kernel's first SYN retransmission at
    1 s): exactly one SYN per attempt whatever the dataplane does with it."""
    sent, connected, errors = 0, 0, {}
    for _ in range(count):
        s = pod_socket(ns, family_of(dst), socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            rc = s.connect_ex((dst, port))
            sent += 1
            if rc in (0, errno.EINPROGRESS):
                _, w, _ = select.select([], [s], [], timeout)
                rc = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) if w else errno.ETIMEDOUT
            if rc == 0:
                connected += 1
            else:
                errors[_errname(rc)] = errors.get(_errname(rc), 0) + 1
        finally:
            s.close()
    return {"sent": sent, "connected": connected, "errors": errors}


def udp_request(ns: str, dst: str, port: int, timeout: float = 0.5) -> bool:
    with pod_socket(ns, family_of(dst), socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        try:
            s.sendto(payload(port), (dst, port))
            s.recvfrom(2048)
            return True
        except OSError:
            return False


def reachable(ns: str, dst: str, proto: str, port: int, timeout: float = 0.5) -> bool:
    if proto == "tcp":
        return tcp_attempts(ns, dst, port, 1, timeout)["connected"] == 1
    return udp_request(ns, dst, port, timeout)


def parallel(fn, items: list) -> list:
    """fn(item) for every item, each in its own thread; an exception becomes {"error": ...}."""
    results = [None] * len(items)

    def work(i, item):
        try:
            results[i] = fn(item)
        except Exception as e:  # reported with the item, the others still run
            results[i] = {"error": f"{type(e).__name__}: {e}"}

    threads = [threading.Thread(target=work, args=(i, it), daemon=True) for i, it in enumerate(items)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


class Servers:
    """Listeners in lab pods (TCP accept-and-close, UDP echo, IPv4 and IPv6) while the `with` block runs.
    ports_by_netns: {netns name: [(proto, port), ...]}."""

    def __init__(self, ports_by_netns: dict):
        self.ports_by_netns = ports_by_netns
        self.socks = []
        self.stop = threading.Event()
        self.thread = None

    def __enter__(self):
        try:
            for ns, ports in self.ports_by_netns.items():
                for proto, port in ports:
                    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
                    s = pod_socket(ns, socket.AF_INET6, kind)
                    self.socks.append(s)
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("::", port))
                    if kind == socket.SOCK_STREAM:
                        s.listen(128)
                    s.setblocking(False)
        except Exception:
            self.__exit__(None, None, None)
            raise
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self

    def _serve(self):
        while not self.stop.is_set():
            readable, _, _ = select.select(self.socks, [], [], 0.05)
            for s in readable:
                try:
                    if s.type == socket.SOCK_STREAM:
                        conn, _ = s.accept()
                        conn.close()
                    else:
                        data, peer = s.recvfrom(2048)
                        s.sendto(data, peer)
                except OSError:
                    pass

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread:
            self.thread.join()
        for s in self.socks:
            s.close()
        return False


class EstablishedUdp:
    """A UDP flow conntrack knows as established: one request answered (the caller runs a Servers on the
    destination), then `send(count)` more from the same socket and source port."""

    def __init__(self, ns: str, dst: str, port: int):
        self.dst, self.port = dst, port
        self.sock = pod_socket(ns, family_of(dst), socket.SOCK_DGRAM)
        self.sock.bind(("", 0))
        self.sport = self.sock.getsockname()[1]

    def establish(self, attempts: int = 5, timeout: float = 1.0) -> bool:
        self.sock.settimeout(timeout)
        for _ in range(attempts):
            self.sock.sendto(payload(self.port), (self.dst, self.port))
            try:
                self.sock.recvfrom(2048)
                return True
            except socket.timeout:
                continue
        return False

    def send(self, count: int, interval: float = 0.02) -> dict:
        sent, errors = 0, {}
        for _ in range(count):
            try:
                self.sock.sendto(payload(self.port), (self.dst, self.port))
                sent += 1
            except OSError as e:
                errors[_errname(e.errno)] = errors.get(_errname(e.errno), 0) + 1
                if e.errno == errno.EPERM:
                    sent += 1
            time.sleep(interval)
        return {"sent": sent, "errors": errors}

    def close(self):
        self.sock.close()
