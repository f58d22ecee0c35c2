"""A TCP proxy that adds a fixed one-way delay to every byte, in both directions.

This machine's kernel has no `netem` qdisc, so the network scenario (loadtests/network) puts
this proxy on the path between the frontend and a worker to stand in for distance. Each chunk
read from one side is written to the other `delay` seconds after it arrived, in order, so the
round trip grows by twice the delay while throughput is untouched (pipelining is preserved:
later chunks do not wait for earlier ones beyond their own due time).

The delay is read from --delay-file (milliseconds, a float) when the proxy starts and every
0.2 s after, so a running scenario changes it without breaking connections.

    python3 delay_proxy.py --listen HOST:PORT --upstream HOST:PORT [--delay-file F] [--delay-ms D]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path


class Delay:
    def __init__(self, file: Path | None, initial_ms: float):
        self.file = file
        self.seconds = initial_ms / 1000.0

    async def follow(self) -> None:
        while self.file is not None:
            try:
                self.seconds = max(0.0, float(self.file.read_text().strip() or 0) / 1000.0)
            except (OSError, ValueError):
                pass
            await asyncio.sleep(0.2)


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: Delay) -> None:
    """Copies reader → writer, each chunk no earlier than `delay` after it was read."""
    queue: asyncio.Queue = asyncio.Queue()

    async def deliver() -> None:
        while True:
            due, chunk = await queue.get()
            if chunk is None:
                break
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()

    sender = asyncio.create_task(deliver())
    try:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                break
            await queue.put((time.monotonic() + delay.seconds, chunk))
    except (ConnectionError, OSError):
        pass
    finally:
        await queue.put((0.0, None))
        try:
            await sender
        except (ConnectionError, OSError):
            pass
        try:
            writer.close()
        except (ConnectionError, OSError):
            pass


def address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", required=True)
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--delay-file", type=Path)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    options = parser.parse_args()
    delay = Delay(options.delay_file, options.delay_ms)
    upstream_host, upstream_port = address(options.upstream)

    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(upstream_host, upstream_port)
        except OSError:
            client_writer.close()
            return
        for w in (client_writer, server_writer):
            sock = w.get_extra_info("socket")
            if sock is not None:
                import socket
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pump(client_reader, server_writer, delay), pump(server_reader, client_writer, delay))

    host, port = address(options.listen)
    server = await asyncio.start_server(handle, host, port)
    follower = asyncio.create_task(delay.follow())
    print(f"delay_proxy: {options.listen} -> {options.upstream}", flush=True)
    async with server:
        await server.serve_forever()
    follower.cancel()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
