#!/usr/bin/python3
"""A Modbus TCP server (pymodbus 3.0, Debian's python3-pymodbus) serving a
fixed register map from a JSON spec, for linegate's interop tests.

    /usr/bin/python3 modbus_server.py SPEC.json

SPEC.json (what testdata/peers.StartPymodbus writes):

    {"host": "127.0.0.1", "port": 0,
     "units": {"1": {"size": 64,
                     "holding":  {"0": 4660, "1": 22136},
                     "input":    {"10": 7},
                     "coils":    {"3": true},
                     "discrete": {"5": false}}}}

- Addresses are 0-based protocol addresses (zero_mode=True: without it
  pymodbus 3.0 shifts every address by one).
- Each table of a unit serves addresses 0..size-1, zero where the spec says
  nothing; a read that reaches past size gets exception 2 (illegal data
  address).
- A unit id not in the spec gets no reply at all (the client times out),
  like a serial device that is not on the bus. Unit 0 is treated like any
  other unit id (no broadcast).
- port 0 picks a free port. Once listening, prints "READY host:port" on
  stdout. SIGTERM or SIGINT stops it (exit 0).
- Logs warnings and errors on stderr (LINEGATE_PEER_DEBUG=1: everything),
  without the ERROR "Handler for stream ... has been canceled" that pymodbus
  3.0 logs on every client disconnect.
"""

import asyncio
import json
import logging
import os
import signal
import sys

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
)
from pymodbus.server import StartAsyncTcpServer


class DropCanceled(logging.Filter):
    """Drops pymodbus's spurious per-disconnect error."""

    def filter(self, record):
        return "has been canceled" not in record.getMessage()


def setup_logging():
    # pymodbus.constants calls logging.basicConfig at import time: replace
    # that handler (force) so the filter sees every record.
    debug = os.environ.get("LINEGATE_PEER_DEBUG") == "1"
    logging.basicConfig(
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.DEBUG if debug else logging.WARNING,
        force=True,
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(DropCanceled())


def block(size, values, default):
    """A table of size entries from address 0, set from {"addr": value}."""
    data = [default] * size
    for addr, value in values.items():
        a = int(addr)
        if not 0 <= a < size:
            raise ValueError(f"address {a} outside the served range 0..{size - 1}")
        data[a] = value
    return ModbusSequentialDataBlock(0, data)


def build_context(spec):
    slaves = {}
    for unit, u in spec["units"].items():
        size = int(u["size"])
        if not 1 <= size <= 65536:
            raise ValueError(f"unit {unit}: size {size}: want 1..65536")
        for addr, word in {**u.get("holding", {}), **u.get("input", {})}.items():
            if not 0 <= int(word) <= 0xFFFF:
                raise ValueError(f"unit {unit}: address {addr}: word {word} out of range")
        slaves[int(unit)] = ModbusSlaveContext(
            hr=block(size, {a: int(w) for a, w in u.get("holding", {}).items()}, 0),
            ir=block(size, {a: int(w) for a, w in u.get("input", {}).items()}, 0),
            co=block(size, {a: bool(b) for a, b in u.get("coils", {}).items()}, False),
            di=block(size, {a: bool(b) for a, b in u.get("discrete", {}).items()}, False),
            zero_mode=True,
        )
    return ModbusServerContext(slaves=slaves, single=False)


async def serve(spec):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    server = await StartAsyncTcpServer(
        context=build_context(spec),
        address=(spec.get("host", "127.0.0.1"), int(spec.get("port", 0))),
        defer_start=True,
        # Reuse: a restart on the same port must not fail on TIME_WAIT.
        allow_reuse_address=True,
        # Unknown unit: no reply, even when unit 0 (a wildcard for the
        # framer) is in the spec and the request reaches the datastore.
        ignore_missing_slaves=True,
    )
    task = asyncio.create_task(server.serve_forever())
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({server.serving, task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # raises the bind error
        raise RuntimeError("server ended before listening")
    if server.serving.done():
        host, port = server.server.sockets[0].getsockname()[:2]
        print(f"READY {host}:{port}", flush=True)
    await waiter
    await server.server_close()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    setup_logging()
    with open(sys.argv[1], encoding="utf-8") as f:
        spec = json.load(f)
    try:
        asyncio.run(serve(spec))
    except (OSError, ValueError, KeyError) as exc:
        print(f"modbus_server: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
