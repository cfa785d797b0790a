#!/usr/bin/env python3
"""A TCP proxy standing in for the injector's Service in the auto-TLS test (tests/e2e/tls.sh).

    tcp-proxy.py LISTEN_PORT BACKENDS_FILE

Each new connection goes to the next backend port listed in BACKENDS_FILE (re-read per
connection, one port per line, round robin); a backend that refuses the connection is skipped,
as an endpoint that has gone away. Bytes are copied both ways untouched: TLS is end to end
between the kube-apiserver and the injector, which is what the test is about.
"""
import asyncio
import itertools
import sys

counter = itertools.count()


def backends(path):
    try:
        with open(path) as f:
            return [int(line) for line in f.read().split() if line.strip()]
    except (OSError, ValueError):
        return []


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


async def handle(client_r, client_w, path):
    ports = backends(path)
    start = next(counter)
    for i in range(len(ports)):
        port = ports[(start + i) % len(ports)]
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            continue
        await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w))
        return
    client_w.close()


async def main():
    port, path = int(sys.argv[1]), sys.argv[2]
    server = await asyncio.start_server(lambda r, w: handle(r, w, path), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
