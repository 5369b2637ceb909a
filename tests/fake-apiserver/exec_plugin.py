#!/usr/bin/env python3
"""A client-go exec credential plugin for netpol-trace's tests: prints an ExecCredential.

  exec_plugin.py [--token T | --token-file F] [--cert F --key F] [--expire-seconds N]
                 [--count-file F] [--info-file F] [--fail MESSAGE]

The apiVersion answered is the one KUBERNETES_EXEC_INFO asks for. --token-file is read at every run, so a
test can rotate the credential; --count-file gets one line per run; --info-file receives KUBERNETES_EXEC_INFO.
"""
import argparse
import datetime
import json
import os
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--token")
    ap.add_argument("--token-file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--expire-seconds", type=float)
    ap.add_argument("--count-file")
    ap.add_argument("--info-file")
    ap.add_argument("--fail")
    args = ap.parse_args()
    info_text = os.environ.get("KUBERNETES_EXEC_INFO", "")
    if args.info_file:
        with open(args.info_file, "w") as f:
            f.write(info_text)
    if args.count_file:
        with open(args.count_file, "a") as f:
            f.write("run\n")
    if args.fail:
        sys.stderr.write(args.fail + "\n")
        sys.exit(1)
    info = json.loads(info_text) if info_text else {}
    status = {}
    if args.token_file:
        with open(args.token_file) as f:
            status["token"] = f.read().strip()
    elif args.token:
        status["token"] = args.token
    if args.cert:
        with open(args.cert) as f:
            status["clientCertificateData"] = f.read()
        with open(args.key) as f:
            status["clientKeyData"] = f.read()
    if args.expire_seconds is not None:
        t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=args.expire_seconds)
        status["expirationTimestamp"] = t.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = {"apiVersion": info.get("apiVersion", "client.authentication.k8s.io/v1"), "kind": "ExecCredential",
           "status": status}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
