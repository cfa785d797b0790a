#!/usr/bin/env python3
"""Rewrite the clientConfig of every webhook in a manifest read from stdin.

    rewrite-webhook.py --url https://127.0.0.1:PORT/mutate --ca-file ca.crt
                       [--failure-policy Ignore|Fail] < in.yaml > out.yaml

Only the `clientConfig:` block(s) are replaced (by `url:` + `caBundle:`), and optionally the
`failurePolicy:` value; every other line is copied unchanged, so the e2e applies the same
webhook-config/ files a cluster admin would. Documents without a clientConfig pass through.
Line-based on purpose: no YAML library is needed, and comments and key order survive.
"""
import argparse
import base64
import re
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--ca-file", required=True)
    ap.add_argument("--failure-policy", choices=["Ignore", "Fail"])
    args = ap.parse_args()
    with open(args.ca_file, "rb") as f:
        ca_bundle = base64.b64encode(f.read()).decode()

    out = []
    lines = sys.stdin.read().splitlines()
    i = 0
    rewritten = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^(\s*)(-\s+)?clientConfig:\s*(#.*)?$", line)
        if m:
            indent = len(m.group(1)) + len(m.group(2) or "")
            out.append(line)
            i += 1
            # drop the old block: every following line indented deeper (or blank)
            while i < len(lines) and (
                not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent
            ):
                i += 1
            pad = " " * (indent + 2)
            out.append(f"{pad}url: {args.url}")
            out.append(f"{pad}caBundle: {ca_bundle}")
            rewritten += 1
            continue
        if args.failure_policy:
            fm = re.match(r"^(\s*(-\s+)?)failurePolicy:\s*\S+(\s*#.*)?$", line)
            if fm:
                line = f"{fm.group(1)}failurePolicy: {args.failure_policy}"
        out.append(line)
        i += 1
    sys.stdout.write("\n".join(out) + "\n")
    if rewritten:
        print(f"rewrite-webhook: rewrote {rewritten} clientConfig block(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
