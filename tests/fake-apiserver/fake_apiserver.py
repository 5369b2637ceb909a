#!/usr/bin/env python3
"""A fake Kubernetes API server for netpol-trace's tests (never for production use).

Serves, over HTTPS on 127.0.0.1, the six resources netpol-trace reads (pods, namespaces, services, nodes,
networkpolicies.networking.k8s.io, endpointslices.discovery.k8s.io) the way kube-apiserver does for the parts
the client relies on:
  - list with metadata.resourceVersion, `limit`/`continue` pagination over a consistent snapshot, and
    410 Gone for a continue token older than the last compaction;
  - watch (`watch=1`) from a resourceVersion, chunked, one JSON event per line, BOOKMARK events when
    `allowWatchBookmarks=true`, `timeoutSeconds`, and 410 Gone (as an ERROR event, or as the HTTP status
    with --gone-as-status) for a resourceVersion older than the last compaction;
  - bearer-token and client-certificate authentication (401 otherwise), 403 for resources made forbidden;
  - the pod proxy path /api/v1/namespaces/<ns>/pods/<pod>[:<port>]/proxy/<path>, forwarded to a
    configured local address.

Tests drive it through /_control/* (no authentication; loopback only):
  POST /_control/apply          an object, a list of objects, or {"items": [...]}: create or replace
  POST /_control/delete         {"kind", "namespace", "name"} or a list of them
  POST /_control/compact        forget history: older resourceVersions get 410 Gone
  POST /_control/drop-watches   cut every open watch connection (no clean end of the stream)
  POST /_control/config         {"bookmark_interval": s, "gone_as_status": b, "tokens": {tok: user},
                                 "forbid": [resource, ...], "proxy_target": "host:port",
                                 "proxy_targets": {"ns/pod": "host:port"},
                                 "refuse_watches": b (503 to new watches), "fail": {prefix: [status, n]}}
  POST /_control/generate       {"pods": N, "namespaces": M, "policies": P, "nodes": K}: bulk objects
  POST /_control/churn          {"events": N}: N pod relabels (MODIFIED events), for benchmarks
  GET  /_control/stats          request counters and the current resourceVersion

Usage:
  fake_apiserver.py --gen-certs DIR         write ca.crt/key, server.crt/key, client.crt/key (CN
                                            cert-user) and other-ca.crt (a CA the server does not use)
  fake_apiserver.py --certs DIR --port 0 --ready-file F [--token T]...
The port actually bound is written to the ready file once the server accepts connections.
"""

import argparse
import base64
import bisect
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# resource -> (prefix, kind, apiVersion, namespaced, group for messages)
RESOURCES = {
    "pods": ("/api/v1", "Pod", "v1", True, ""),
    "namespaces": ("/api/v1", "Namespace", "v1", False, ""),
    "services": ("/api/v1", "Service", "v1", True, ""),
    "nodes": ("/api/v1", "Node", "v1", False, ""),
    "networkpolicies": ("/apis/networking.k8s.io/v1", "NetworkPolicy", "networking.k8s.io/v1", True,
                        "networking.k8s.io"),
    "endpointslices": ("/apis/discovery.k8s.io/v1", "EndpointSlice", "discovery.k8s.io/v1", True,
                       "discovery.k8s.io"),
    # CRDs: served only once a test installs them (config "crds"), as on a cluster without them.
    "clusternetworkpolicies": ("/apis/policy.networking.k8s.io/v1alpha2", "ClusterNetworkPolicy",
                               "policy.networking.k8s.io/v1alpha2", False, "policy.networking.k8s.io"),
    "adminnetworkpolicies": ("/apis/policy.networking.k8s.io/v1alpha1", "AdminNetworkPolicy",
                             "policy.networking.k8s.io/v1alpha1", False, "policy.networking.k8s.io"),
    "baselineadminnetworkpolicies": ("/apis/policy.networking.k8s.io/v1alpha1", "BaselineAdminNetworkPolicy",
                                     "policy.networking.k8s.io/v1alpha1", False, "policy.networking.k8s.io"),
}
CRD_RESOURCES = {"clusternetworkpolicies", "adminnetworkpolicies", "baselineadminnetworkpolicies"}
# Other versions a CRD may serve instead of its RESOURCES one (config "crd_versions").
ALT_PREFIXES = {"clusternetworkpolicies": {"v1beta1": "/apis/policy.networking.k8s.io/v1beta1"}}
KIND_TO_RESOURCE = {v[1]: k for k, v in RESOURCES.items()}
PREFIXES = {}
for _res, (_prefix, *_rest) in RESOURCES.items():
    PREFIXES.setdefault(_prefix, set()).add(_res)
for _res, _alts in ALT_PREFIXES.items():
    for _prefix in _alts.values():
        PREFIXES.setdefault(_prefix, set()).add(_res)

MAX_EVENTS = 400_000  # history kept before the oldest events are compacted away


def status_body(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def label_selector_matches(selector, obj):
    """The equality-based label selectors kube-apiserver takes: k=v, k==v, k!=v, k, !k (comma = AND)."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for term in (t.strip() for t in selector.split(",")):
        if not term:
            continue
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class Store:
    """Objects, the event history and the resourceVersion counter, under one condition variable."""

    def __init__(self):
        self.cond = threading.Condition()
        self.rv = 1
        self.objects = {r: {} for r in RESOURCES}  # resource -> key -> (rv, bytes)
        self.ev_rvs = []  # ascending resourceVersions of events
        self.ev_items = []  # (resource, namespace, line bytes)
        self.compacted = 1  # watches from an rv below this get 410
        self.drop_generation = 0
        self.lists = {}  # continue token id -> (rv, [bytes])
        self.next_list = 1
        self.uid = 0

    @staticmethod
    def key(ns, name):
        return f"{ns}/{name}" if ns else name

    def _record(self, resource, ns, etype, obj_bytes):
        line = b'{"type":"' + etype.encode() + b'","object":' + obj_bytes + b"}\n"
        self.ev_rvs.append(self.rv)
        self.ev_items.append((resource, ns, line))
        if len(self.ev_rvs) > MAX_EVENTS:
            cut = len(self.ev_rvs) // 2
            self.compacted = self.ev_rvs[cut - 1] + 1
            del self.ev_rvs[:cut]
            del self.ev_items[:cut]

    def apply(self, obj, notify=True):
        kind = obj.get("kind", "")
        resource = KIND_TO_RESOURCE.get(kind)
        if resource is None:
            raise ValueError(f"unsupported kind {kind!r}")
        prefix, kind, api_version, namespaced, _ = RESOURCES[resource]
        meta = obj.setdefault("metadata", {})
        if not meta.get("name"):
            raise ValueError("metadata.name is required")
        ns = (meta.get("namespace") or "default") if namespaced else ""
        if namespaced:
            meta["namespace"] = ns
        # A CRD object keeps the version it was written in (a ClusterNetworkPolicy may be v1beta1).
        given = str(obj.get("apiVersion", ""))
        if resource not in CRD_RESOURCES or given.rpartition("/")[0] != api_version.rpartition("/")[0]:
            obj["apiVersion"] = api_version
        k = self.key(ns, meta["name"])
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        existing = self.objects[resource].get(k)
        if existing is None:
            self.uid += 1
            meta.setdefault("uid", f"00000000-0000-0000-0000-{self.uid:012d}")
        data = dumps(obj)
        self.objects[resource][k] = (self.rv, data)
        self._record(resource, ns, "ADDED" if existing is None else "MODIFIED", data)
        if notify:
            self.cond.notify_all()

    def delete(self, kind, ns, name):
        resource = KIND_TO_RESOURCE.get(kind) or (kind if kind in RESOURCES else None)
        if resource is None:
            raise ValueError(f"unsupported kind {kind!r}")
        namespaced = RESOURCES[resource][3]
        ns = (ns or "default") if namespaced else ""
        k = self.key(ns, name)
        existing = self.objects[resource].pop(k, None)
        if existing is None:
            return False
        obj = json.loads(existing[1])
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._record(resource, ns, "DELETED", dumps(obj))
        self.cond.notify_all()
        return True

    def compact(self):
        self.compacted = self.rv + 1
        self.ev_rvs.clear()
        self.ev_items.clear()
        self.lists.clear()


class FakeApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, addr, ssl_context, tokens):
        super().__init__(addr, Handler)
        self.ssl_context = ssl_context
        self.store = Store()
        self.tokens = dict(tokens)  # token -> user
        self.forbidden = set()
        self.bookmark_interval = 1.0
        self.gone_as_status = False
        self.proxy_target = None
        self.proxy_targets = {}  # "ns/pod" -> "host:port"; with any set, unknown pods get 404
        self.refuse_watches = False
        self.crds = {}  # CRD resource -> the version served ("v1alpha2", ...); absent: 404, not installed
        self.fail = {}  # path prefix -> [status, remaining count]
        self.stats = {"lists": 0, "watches": 0, "requests": 0, "unauthorized": 0, "gone": 0, "proxied": 0}
        self.stats_by_resource = {r: {"lists": 0, "watches": 0} for r in RESOURCES}
        self.active_watches = 0

    def handle_error(self, request, client_address):
        # Clients that go away mid-stream, failed handshakes (the CA tests), dropped watches: all expected.
        pass


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-apiserver"

    def setup(self):
        ctx = self.server.ssl_context
        if ctx is not None:
            self.request.settimeout(10)
            self.request = ctx.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt, *args):
        if os.environ.get("FAKE_APISERVER_LOG"):
            sys.stderr.write("fake-apiserver: " + (fmt % args) + "\n")

    # ---- responses ----

    def send_json(self, code, body, extra_headers=None):
        data = body if isinstance(body, (bytes, bytearray)) else dumps(body)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_status(self, code, reason, message, details=None):
        self.send_json(code, status_body(code, reason, message, details))

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    # ---- authentication ----

    def user(self):
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            return self.server.tokens.get(auth[len("Bearer "):].strip())
        if isinstance(self.request, ssl.SSLSocket):
            cert = self.request.getpeercert()
            if cert:
                for rdn in cert.get("subject", ()):
                    for k, v in rdn:
                        if k == "commonName":
                            return v
        return None

    # ---- routing ----

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def dispatch(self, method):
        srv = self.server
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if path.startswith("/_control/"):
            return self.control(method, path[len("/_control/"):], query)
        with srv.store.cond:
            srv.stats["requests"] += 1
        for prefix, entry in list(srv.fail.items()):
            if path.startswith(prefix) and entry[1] > 0:
                entry[1] -= 1
                return self.send_status(entry[0], "InternalError", f"injected failure for {prefix}")
        user = self.user()
        if user is None:
            with srv.store.cond:
                srv.stats["unauthorized"] += 1
            return self.send_status(401, "Unauthorized", "Unauthorized")
        proxy = self.match_proxy(path)
        if proxy:
            return self.proxy(method, proxy, url.query)
        if method == "GET" and (path in ("/api", "/apis") or path.startswith(("/api/", "/apis/"))):
            discovery = self.discovery(path)
            if discovery is not None:
                return self.send_json(200, dumps(discovery))
        route = self.match_resource(path)
        if route is None or method != "GET":
            return self.send_status(404, "NotFound", "the server could not find the requested resource")
        resource, ns, name = route
        if resource in CRD_RESOURCES:
            version = srv.crds.get(resource)
            served = RESOURCES[resource][0]
            if version and version != served.rsplit("/", 1)[1]:
                served = ALT_PREFIXES.get(resource, {}).get(version, "")
            if not version or not path.startswith(served + "/"):
                return self.send_status(404, "NotFound", "the server could not find the requested resource")
        group = RESOURCES[resource][4]
        if resource in srv.forbidden:
            verb = "watch" if query.get("watch") in ("1", "true") else "list"
            full = f"{resource}.{group}" if group else resource
            where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            return self.send_status(
                403, "Forbidden",
                f'{full} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {where}',
                {"kind": resource, "group": group})
        if name is not None:
            return self.get_one(resource, ns, name)
        if query.get("watch") in ("1", "true"):
            if srv.refuse_watches:
                return self.send_status(503, "ServiceUnavailable", "watches are refused (test setting)")
            return self.watch(resource, ns, query)
        return self.list(resource, ns, query)

    def discovery(self, path):
        """The legacy discovery documents kubectl maps kinds to resources with (/api, /apis, /api/v1, ...)."""
        srv = self.server
        served = {}  # group version -> [(resource, kind, namespaced)]
        for res, (prefix, kind, api_version, namespaced, _group) in RESOURCES.items():
            if res in CRD_RESOURCES:
                version = srv.crds.get(res)
                if not version:
                    continue
                api_version = api_version.rsplit("/", 1)[0] + "/" + version
            served.setdefault(api_version, []).append((res, kind, namespaced))
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"],
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}
        if path == "/apis":
            groups = {}
            for gv in served:
                if "/" in gv:
                    group, version = gv.split("/")
                    groups.setdefault(group, []).append({"groupVersion": gv, "version": version})
            return {"kind": "APIGroupList", "apiVersion": "v1",
                    "groups": [{"name": g, "versions": v, "preferredVersion": v[0]} for g, v in sorted(groups.items())]}
        gv = path[len("/api/"):] if path.startswith("/api/") else path[len("/apis/"):]
        if gv not in served:
            return None
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv,
                "resources": [{"name": r, "singularName": k.lower(), "namespaced": ns, "kind": k,
                               "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}
                              for r, k, ns in served[gv]]}

    def match_resource(self, path):
        parts = [p for p in path.split("/") if p]
        for prefix, resources in PREFIXES.items():
            pp = [p for p in prefix.split("/") if p]
            if parts[:len(pp)] != pp:
                continue
            rest = parts[len(pp):]
            if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] in resources:
                # /namespaces/<ns>/<resource>[/<name>]
                if len(rest) == 3:
                    return rest[2], rest[1], None
                if len(rest) == 4:
                    return rest[2], rest[1], rest[3]
                return None
            if len(rest) in (1, 2) and rest[0] in resources:
                return rest[0], "", (rest[1] if len(rest) == 2 else None)
        return None

    @staticmethod
    def match_proxy(path):
        parts = path.split("/")
        # ['', 'api', 'v1', 'namespaces', ns, 'pods', 'name[:port]', 'proxy', ...]
        if len(parts) >= 8 and parts[1:4] == ["api", "v1", "namespaces"] and parts[5] == "pods" and \
                parts[7] == "proxy":
            pod, _, port = parts[6].partition(":")
            return parts[4], pod, port, "/" + "/".join(parts[8:])
        return None

    # ---- API ----

    def get_one(self, resource, ns, name):
        store = self.server.store
        with store.cond:
            entry = store.objects[resource].get(Store.key(ns if RESOURCES[resource][3] else "", name))
        if entry is None:
            return self.send_status(404, "NotFound", f'{resource} "{name}" not found')
        return self.send_json(200, entry[1])

    def list(self, resource, ns, query):
        srv = self.server
        store = srv.store
        prefix, kind, api_version, namespaced, _ = RESOURCES[resource]
        limit = int(query.get("limit") or 0)
        token = query.get("continue", "")
        with store.cond:
            srv.stats["lists"] += 1
            srv.stats_by_resource[resource]["lists"] += 1
            if token:
                try:
                    list_id, offset = (int(x) for x in token.split(":"))
                except ValueError:
                    return self.send_status(400, "BadRequest", "invalid continue token")
                snap = store.lists.get(list_id)
                if snap is None or snap[0] < store.compacted - 1:
                    srv.stats["gone"] += 1
                    return self.send_status(
                        410, "Expired",
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter.")
                rv, items = snap
            else:
                rv = store.rv
                objs = store.objects[resource]
                keys = sorted(k for k in objs if not ns or k.startswith(ns + "/"))
                items = [objs[k][1] for k in keys]
                selector = query.get("labelSelector", "")
                if selector:
                    items = [i for i in items if label_selector_matches(selector, json.loads(i))]
                list_id = store.next_list
                store.next_list += 1
                offset = 0
                if limit and len(items) > limit:
                    store.lists[list_id] = (rv, items)
        page = items[offset:offset + limit] if limit else items[offset:]
        meta = {"resourceVersion": str(rv)}
        end = offset + len(page)
        if limit and end < len(items):
            meta["continue"] = f"{list_id}:{end}"
            meta["remainingItemCount"] = len(items) - end
        else:
            with store.cond:
                store.lists.pop(list_id, None)
        body = b'{"kind":"' + kind.encode() + b'List","apiVersion":"' + api_version.encode() + \
            b'","metadata":' + dumps(meta) + b',"items":[' + b",".join(page) + b"]}"
        self.send_json(200, body)

    def write_chunk(self, data):
        self.wfile.write(b"%x\r\n" % len(data) + data + b"\r\n")
        self.wfile.flush()

    def abort_connection(self):
        try:
            self.request.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def watch(self, resource, ns, query):
        srv = self.server
        store = srv.store
        prefix, kind, api_version, namespaced, _ = RESOURCES[resource]
        rv_param = query.get("resourceVersion", "")
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        timeout = float(query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        initial = []
        gone = False
        with store.cond:
            srv.stats["watches"] += 1
            srv.stats_by_resource[resource]["watches"] += 1
            drop_gen = store.drop_generation
            if rv_param in ("", "0"):
                # Start at the current state: synthetic ADDED events for what exists.
                pos = store.rv
                for k, (_, data) in sorted(store.objects[resource].items()):
                    if not ns or k.startswith(ns + "/"):
                        initial.append(b'{"type":"ADDED","object":' + data + b"}\n")
            else:
                try:
                    pos = int(rv_param)
                except ValueError:
                    return self.send_status(400, "BadRequest", f"invalid resourceVersion {rv_param!r}")
                if pos < store.compacted - 1:
                    gone = True
                    srv.stats["gone"] += 1
            compacted = store.compacted
        if gone:
            msg = f"too old resource version: {rv_param} ({compacted - 1})"
            if srv.gone_as_status:
                return self.send_status(410, "Expired", msg)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if gone:
            self.write_chunk(dumps({"type": "ERROR", "object": status_body(410, "Expired", msg)}) + b"\n")
            self.write_chunk(b"")
            return
        with store.cond:
            srv.active_watches += 1
        try:
            if initial:
                self.write_chunk(b"".join(initial))
            next_bookmark = time.monotonic() + srv.bookmark_interval
            while True:
                out = []
                with store.cond:
                    while True:
                        if store.drop_generation != drop_gen:
                            self.abort_connection()
                            return
                        if pos < store.compacted - 1:
                            # History this watch still needed is gone.
                            gone_line = dumps({"type": "ERROR", "object": status_body(
                                410, "Expired", f"too old resource version: {pos} ({store.compacted - 1})")})
                            out.append(gone_line + b"\n")
                            pos = None
                            break
                        i = bisect.bisect_right(store.ev_rvs, pos)
                        if i < len(store.ev_rvs):
                            for j in range(i, len(store.ev_rvs)):
                                res, ens, line = store.ev_items[j]
                                if res == resource and (not ns or ens == ns):
                                    out.append(line)
                            pos = store.ev_rvs[-1]
                        now = time.monotonic()
                        if out:
                            break
                        if now >= deadline:
                            break
                        if bookmarks and now >= next_bookmark:
                            pos = max(pos, store.rv)
                            out.append(b'{"type":"BOOKMARK","object":{"kind":"' + kind.encode() +
                                       b'","apiVersion":"' + api_version.encode() +
                                       b'","metadata":{"resourceVersion":"' + str(pos).encode() + b'"}}}\n')
                            next_bookmark = now + srv.bookmark_interval
                            break
                        wait = deadline - now
                        if bookmarks:
                            wait = min(wait, next_bookmark - now)
                        store.cond.wait(timeout=max(wait, 0.001))
                if out:
                    self.write_chunk(b"".join(out))
                if pos is None or time.monotonic() >= deadline:
                    self.write_chunk(b"")  # a clean end of the stream
                    return
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            with store.cond:
                srv.active_watches -= 1

    def proxy(self, method, match, query):
        """Forwards to the pod's configured address, streaming the answer as it arrives (like kube-apiserver, which
        keeps pod proxy requests open as long-running)."""
        srv = self.server
        ns, pod, port, path = match
        with srv.store.cond:
            exists = f"{ns}/{pod}" in srv.store.objects["pods"]
            target = srv.proxy_targets.get(f"{ns}/{pod}", srv.proxy_target)
        if srv.proxy_targets and not exists:
            return self.send_status(404, "NotFound", f'pods "{pod}" not found')
        if not target:
            return self.send_status(503, "ServiceUnavailable", f"no proxy target for pod {ns}/{pod}")
        body = self.read_body() if method in ("POST", "PUT") else None
        host, _, tport = target.rpartition(":")
        with srv.store.cond:
            srv.stats["proxied"] += 1
        try:
            conn = http.client.HTTPConnection(host, int(tport), timeout=10)
            conn.request(method, path + ("?" + query if query else ""), body=body,
                         headers={"X-Forwarded-Pod": f"{ns}/{pod}:{port}"})
            resp = conn.getresponse()
        except OSError as e:
            return self.send_status(503, "ServiceUnavailable", f"error trying to reach pod {pod}: {e}")
        streaming = resp.getheader("Content-Length") is None
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.getheader("Content-Type", "text/plain"))
        try:
            if not streaming:
                data = resp.read()
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            conn.sock.settimeout(None)  # a stream may be silent for long
            while True:
                data = resp.read1(65536)
                if not data:
                    break
                self.write_chunk(data)
                self.wfile.flush()
            self.write_chunk(b"")
        except (OSError, http.client.HTTPException):
            self.close_connection = True  # either side went away: end the client's stream uncleanly
        finally:
            conn.close()

    # ---- control ----

    def control(self, method, op, query):
        srv = self.server
        store = srv.store
        try:
            raw = self.read_body() if method == "POST" else b""
            arg = json.loads(raw) if raw else {}
            if op == "stats" and method == "GET":
                with store.cond:
                    body = dict(srv.stats, rv=store.rv, compacted=store.compacted,
                                active_watches=srv.active_watches, by_resource=srv.stats_by_resource)
                return self.send_json(200, body)
            if method != "POST":
                return self.send_status(405, "MethodNotAllowed", "POST")
            if op == "apply":
                objs = arg.get("items", []) if isinstance(arg, dict) and "items" in arg else arg
                if isinstance(objs, dict):
                    objs = [objs]
                with store.cond:
                    for obj in objs:
                        store.apply(obj, notify=False)
                    store.cond.notify_all()
                    rv = store.rv
                return self.send_json(200, {"resourceVersion": str(rv)})
            if op == "delete":
                items = arg if isinstance(arg, list) else [arg]
                deleted = 0
                with store.cond:
                    for it in items:
                        deleted += store.delete(it["kind"], it.get("namespace", ""), it["name"])
                    rv = store.rv
                return self.send_json(200, {"deleted": deleted, "resourceVersion": str(rv)})
            if op == "compact":
                with store.cond:
                    store.compact()
                    store.cond.notify_all()
                return self.send_json(200, {"compacted": store.compacted})
            if op == "drop-watches":
                with store.cond:
                    store.drop_generation += 1
                    store.cond.notify_all()
                return self.send_json(200, {})
            if op == "config":
                with store.cond:
                    if "bookmark_interval" in arg:
                        srv.bookmark_interval = float(arg["bookmark_interval"])
                    if "gone_as_status" in arg:
                        srv.gone_as_status = bool(arg["gone_as_status"])
                    if "tokens" in arg:
                        srv.tokens = dict(arg["tokens"])
                    if "forbid" in arg:
                        srv.forbidden = set(arg["forbid"])
                    if "refuse_watches" in arg:
                        srv.refuse_watches = bool(arg["refuse_watches"])
                    if "crds" in arg:
                        # {"clusternetworkpolicies": "v1beta1", ...}: the CRDs installed, at the version served
                        srv.crds = {str(k): str(v) for k, v in dict(arg["crds"]).items()}
                    if "proxy_target" in arg:
                        srv.proxy_target = arg["proxy_target"]
                    if "proxy_targets" in arg:
                        srv.proxy_targets = dict(arg["proxy_targets"])
                    if "fail" in arg:
                        # {"path prefix": [status, count]}
                        srv.fail = {k: [int(v[0]), int(v[1])] for k, v in arg["fail"].items()}
                    store.cond.notify_all()
                return self.send_json(200, {})
            if op == "generate":
                return self.send_json(200, generate(store, arg))
            if op == "churn":
                return self.send_json(200, churn(store, arg))
            return self.send_status(404, "NotFound", f"no control operation {op!r}")
        except (ValueError, KeyError, TypeError) as e:
            return self.send_status(400, "BadRequest", f"{op}: {e}")


# ---- bulk objects for benchmarks ----

def make_pod(i, namespaces, nodes, generation=0):
    ns = f"ns-{i % namespaces}"
    app = f"app-{i % 500}"
    return {
        "kind": "Pod",
        "metadata": {
            "name": f"{app}-deployment-{i:07d}",
            "namespace": ns,
            "labels": {"app": app, "tier": ("web", "api", "db", "cache")[i % 4],
                       "pod-template-hash": f"{(i // 7) % 100000:08x}", "generation": str(generation)},
        },
        "spec": {
            "nodeName": f"node-{i % nodes}",
            "containers": [{"name": "main", "image": "registry.example/app:1.0",
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                      {"name": "metrics", "containerPort": 9090}]}],
        },
        "status": {
            "phase": "Running",
            "hostIP": f"192.168.{(i % nodes) // 250}.{(i % nodes) % 250 + 1}",
            "podIP": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
            "podIPs": [{"ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"}],
        },
    }


def generate(store, arg):
    pods = int(arg.get("pods", 0))
    namespaces = max(int(arg.get("namespaces", 1)), 1)
    policies = int(arg.get("policies", 0))
    nodes = max(int(arg.get("nodes", 1)), 1)
    with store.cond:
        for n in range(namespaces):
            store.apply({"kind": "Namespace", "metadata": {"name": f"ns-{n}", "labels": {
                "team": f"team-{n % 20}"}}}, notify=False)
        for n in range(nodes):
            store.apply({"kind": "Node", "metadata": {"name": f"node-{n}"}, "status": {"addresses": [
                {"type": "InternalIP", "address": f"192.168.{n // 250}.{n % 250 + 1}"}]}}, notify=False)
        for i in range(pods):
            store.apply(make_pod(i, namespaces, nodes), notify=False)
        for p in range(policies):
            ns = f"ns-{p % namespaces}"
            store.apply({"kind": "NetworkPolicy", "metadata": {"name": f"policy-{p}", "namespace": ns}, "spec": {
                "podSelector": {"matchLabels": {"app": f"app-{p % 500}"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"team": f"team-{p % 20}"}},
                                       "podSelector": {"matchExpressions": [
                                           {"key": "tier", "operator": "In", "values": ["web", "api"]}]}}],
                             "ports": [{"protocol": "TCP", "port": 8080}]}]}}, notify=False)
        store.cond.notify_all()
        return {"resourceVersion": str(store.rv), "pods": pods}


def churn(store, arg):
    events = int(arg.get("events", 0))
    pods = max(int(arg.get("pods", 1)), 1)
    namespaces = max(int(arg.get("namespaces", 1)), 1)
    nodes = max(int(arg.get("nodes", 1)), 1)
    generation = int(arg.get("generation", 1))
    batch = 2000
    done = 0
    while done < events:
        with store.cond:
            for _ in range(min(batch, events - done)):
                store.apply(make_pod(done % pods, namespaces, nodes, generation + done // pods), notify=False)
                done += 1
            store.cond.notify_all()
    with store.cond:
        return {"resourceVersion": str(store.rv), "events": done}


# ---- certificates ----

def gen_certs(d):
    os.makedirs(d, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ca(name, cn):
        run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            f"{name}.key", "-out", f"{name}.crt", "-days", "3", "-subj", f"/CN={cn}")

    def leaf(name, cn, ext):
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext)
        run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", f"{name}.key",
            "-out", f"{name}.csr", "-subj", f"/CN={cn}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.crt", "-days", "3", "-extfile", f"{name}.ext")

    ca("ca", "fake-apiserver-ca")
    ca("other-ca", "some-other-ca")
    leaf("server", "fake-apiserver",
         "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:fake-apiserver.test\nextendedKeyUsage=serverAuth\n")
    leaf("client", "cert-user", "extendedKeyUsage=clientAuth\n")


def watch_parent(pid):
    while True:
        time.sleep(0.5)
        if os.getppid() != pid:
            os._exit(0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gen-certs", metavar="DIR")
    ap.add_argument("--certs", metavar="DIR", help="serve TLS with DIR/server.crt, client certs from DIR/ca.crt")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--ready-file")
    ap.add_argument("--token", action="append", default=[], help="TOKEN or TOKEN=USER (repeatable)")
    ap.add_argument("--bookmark-interval", type=float, default=1.0)
    ap.add_argument("--gone-as-status", action="store_true")
    ap.add_argument("--exit-with-parent", action="store_true")
    args = ap.parse_args()
    if args.gen_certs:
        gen_certs(args.gen_certs)
        return
    ctx = None
    if args.certs:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(args.certs, "server.crt"), os.path.join(args.certs, "server.key"))
        ctx.load_verify_locations(os.path.join(args.certs, "ca.crt"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    tokens = {}
    for t in args.token:
        tok, _, user = t.partition("=")
        tokens[tok] = user or "token-user"
    srv = FakeApiServer((args.host, args.port), ctx, tokens)
    srv.bookmark_interval = args.bookmark_interval
    srv.gone_as_status = args.gone_as_status
    if args.exit_with_parent:
        threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    port = srv.server_address[1]
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.rename(tmp, args.ready_file)
    else:
        print(port, flush=True)
    try:
        srv.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
