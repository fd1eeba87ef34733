#!/usr/bin/env python3
"""A TCP relay on loopback that adds network latency (this kernel has no netem).

Each chunk is held DELAY ms in each direction, so a round trip through the relay costs
2 x DELAY; a new connection is held one round trip before the relay connects upstream, as a
TCP handshake would cost. Traffic goes only between 127.0.0.1 ports.

usage: relay.py LISTEN_PORT UPSTREAM_PORT [DELAY_MS]
"""
import asyncio
import socket
import sys


async def pump(reader, writer, delay):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def deliver():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                break
            writer.write(data)
            await writer.drain()
        try:
            writer.write_eof()
        except (OSError, RuntimeError):
            pass

    task = asyncio.create_task(deliver())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            queue.put_nowait((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    queue.put_nowait((loop.time() + delay, None))
    try:
        await task
    except (ConnectionError, OSError):
        pass


async def handle(client_reader, client_writer, upstream_port, delay):
    await asyncio.sleep(2 * delay)  # the TCP handshake's round trip
    try:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
    except OSError:
        client_writer.close()
        return
    for w in (client_writer, up_writer):
        sock = w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await asyncio.gather(pump(client_reader, up_writer, delay), pump(up_reader, client_writer, delay))
    for w in (client_writer, up_writer):
        try:
            w.close()
        except OSError:
            pass


async def main():
    listen_port, upstream_port = int(sys.argv[1]), int(sys.argv[2])
    delay = (float(sys.argv[3]) if len(sys.argv) > 3 else 10.0) / 1000.0
    server = await asyncio.start_server(lambda r, w: handle(r, w, upstream_port, delay), "127.0.0.1", listen_port,
                                        backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
