#!/usr/bin/env python3
"""Memory under hostile clients (SECURITY.md, "Measured"). Prints how much the server keeps
resident while N clients hold their connections:

- `bodies` (default): each declares a 4 MiB /mutate body and sends all but 64 KiB of it;
- `connections`: each sets up HTTP/2 (TLS, preface, SETTINGS) and sends no request.

Run from a directory holding certs/ca.crt, certs/tls.crt, certs/tls.key for localhost
(`vault-injector gen-certs --hosts localhost,127.0.0.1 --out-dir certs`):

    python3 tests/adversarial_memory.py target/release/vault-injector 200 [bodies|connections]
"""
import socket, ssl, subprocess, sys, threading, time
from collections import Counter
BIN, N, PORT = sys.argv[1], int(sys.argv[2]), 18445
MODE = sys.argv[3] if len(sys.argv) > 3 else "bodies"
ctx = ssl.create_default_context(cafile="certs/ca.crt")
ctx.set_alpn_protocols(["h2"] if MODE == "connections" else ["http/1.1"])
srv = subprocess.Popen([BIN, "serve", f"-listen=127.0.0.1:{PORT}", "-tls-cert-file=certs/tls.crt",
                        "-tls-key-file=certs/tls.key", "-vault-address=http://vault:8200", "-log-level=error"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(1)
def status(field):
    for line in open(f"/proc/{srv.pid}/status"):
        if line.startswith(field):
            return int(line.split()[1]) // 1024
idle = status("VmRSS")
codes, socks = [], []
def one():
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", PORT)), server_hostname="localhost")
    socks.append(s)
    if MODE == "connections":
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        return
    s.sendall(b"POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n")
    try:
        for _ in range(63):
            s.sendall(b" " * 0x10000)
    except OSError:
        pass
ts = [threading.Thread(target=one) for _ in range(N)]
t0 = time.time(); [t.start() for t in ts]; [t.join() for t in ts]
time.sleep(2)
held = status("VmRSS")
for s in socks:
    try:
        s.settimeout(0.2); codes.append(s.recv(64).split(b" ")[1].decode())
    except Exception:
        codes.append("(held)")
what = "HTTP/2 connections" if MODE == "connections" else "clients x 4 MiB declared, 3.94 MiB sent,"
print(f"{N} {what} held: idle {idle} MiB, VmRSS while held {held} MiB ({(held - idle) * 1024 // N} KiB each), "
      f"VmHWM {status('VmHWM')} MiB, replies {dict(Counter(codes))}")
srv.terminate(); srv.wait()
