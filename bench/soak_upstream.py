#!/usr/bin/env python3
"""A faulty HTTP/1.1 upstream on loopback for the soak (bench/soak.py).

Keep-alive, never closes an idle connection. For RESET_PERCENT of the requests (1 % by
default), once the whole request has arrived, it resets the connection (SO_LINGER 0, so the
close sends RST) instead of answering. Every other request gets 200 with a short body: for a
GET `ok\\n`, for a request with a body the number of body bytes received and `\\n`.

`GET /__soak_stats` (asked directly, not through reckerd) answers a JSON document with the
counts: requests, resets, and connections accepted (its own included). It is never reset, and
its request is not counted.

usage: soak_upstream.py PORT [RESET_PERCENT]
"""
import asyncio
import json
import random
import socket
import struct
import sys

counts = {"requests": 0, "resets": 0, "connections": 0}


def response(status, body, content_type="text/plain"):
    head = f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def handle(reader, writer, reset_fraction):
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    counts["connections"] += 1
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    headers[name.strip().lower()] = value.strip()
            if headers.get("transfer-encoding", "").lower() == "chunked":
                body = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    if size == 0:
                        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
                            pass
                        break
                    body += (await reader.readexactly(size + 2))[:-2]
            else:
                body = await reader.readexactly(int(headers.get("content-length", "0")))
            if target == "/__soak_stats":
                writer.write(response("200 OK", json.dumps(counts).encode(), "application/json"))
                await writer.drain()
                continue
            counts["requests"] += 1
            if random.random() < reset_fraction:
                counts["resets"] += 1
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
                return
            answer = b"ok\n" if method in ("GET", "HEAD") and not body else f"{len(body)}\n".encode()
            writer.write(response("200 OK", b"" if method == "HEAD" else answer))
            await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, OSError, ValueError):
        pass
    finally:
        writer.close()


async def main():
    port = int(sys.argv[1])
    reset_fraction = (float(sys.argv[2]) if len(sys.argv) > 2 else 1.0) / 100.0
    server = await asyncio.start_server(lambda r, w: handle(r, w, reset_fraction), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
