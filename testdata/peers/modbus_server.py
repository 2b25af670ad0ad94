#!/usr/bin/python3
"""A Modbus TCP, RTU or ASCII server (pymodbus 3.0, Debian's
python3-pymodbus) serving a fixed register map from a JSON spec, for
linegate's interop tests.

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
- "serial": {"port": "/path/ttyA", "framer": "rtu" | "ascii",
  "baudrate": 19200} serves that serial port (one end of a socat pty pair)
  instead of TCP, and prints "READY /path/ttyA" once it is open.
- A unit with "sparse": true serves only the addresses the spec lists:
  a read that touches any other gets exception 2 (holes in the map).
- A unit with "delay_ms": N answers every request N ms late (the whole
  server waits, as a slow device holds an RS-485 bus).
- "control": a file of unit ids, one per line or space separated, that
  are muted: they get no reply until removed (a device that disappears).
  Read at every request; a missing file mutes nobody.
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

import time

from pymodbus.datastore import (
    ModbusSequentialDataBlock,
    ModbusServerContext,
    ModbusSlaveContext,
    ModbusSparseDataBlock,
)
from pymodbus.exceptions import NoSuchSlaveException
from pymodbus.framer.ascii_framer import ModbusAsciiFramer
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.server import StartAsyncSerialServer, StartAsyncTcpServer


class DropCanceled(logging.Filter):
    """Drops pymodbus's spurious per-disconnect error."""

    def filter(self, record):
        msg = record.getMessage()
        return "has been canceled" not in msg and "has been cancelled" not in msg


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


def block(size, values, default, sparse=False):
    """A table of size entries from address 0, set from {"addr": value};
    sparse: only the addresses in values."""
    if sparse:
        return ModbusSparseDataBlock({int(a): v for a, v in values.items()} or {65535: default})
    data = [default] * size
    for addr, value in values.items():
        a = int(addr)
        if not 0 <= a < size:
            raise ValueError(f"address {a} outside the served range 0..{size - 1}")
        data[a] = value
    return ModbusSequentialDataBlock(0, data)


class SlowSlave(ModbusSlaveContext):
    """A unit that answers late: the delay blocks the whole server."""

    def __init__(self, delay, **kwargs):
        super().__init__(**kwargs)
        self.delay = delay

    def getValues(self, fc_as_hex, address, count=1):
        time.sleep(self.delay)
        return super().getValues(fc_as_hex, address, count)


class Context(ModbusServerContext):
    """Hides the units listed in the control file: no reply for them."""

    def __init__(self, slaves, control):
        super().__init__(slaves=slaves, single=False)
        self.control = control

    def muted(self):
        if not self.control:
            return set()
        try:
            with open(self.control, encoding="utf-8") as f:
                return {int(x) for x in f.read().split()}
        except (FileNotFoundError, ValueError):
            return set()

    def slaves(self):
        muted = self.muted()
        return [u for u in super().slaves() if u not in muted]

    def __getitem__(self, unit):
        if unit in self.muted():
            raise NoSuchSlaveException(f"unit {unit} is muted")
        return super().__getitem__(unit)


def build_context(spec):
    slaves = {}
    for unit, u in spec["units"].items():
        size = int(u["size"])
        if not 1 <= size <= 65536:
            raise ValueError(f"unit {unit}: size {size}: want 1..65536")
        for addr, word in {**u.get("holding", {}), **u.get("input", {})}.items():
            if not 0 <= int(word) <= 0xFFFF:
                raise ValueError(f"unit {unit}: address {addr}: word {word} out of range")
        sparse = bool(u.get("sparse", False))
        slaves[int(unit)] = SlowSlave(
            float(u.get("delay_ms", 0)) / 1000,
            hr=block(size, {a: int(w) for a, w in u.get("holding", {}).items()}, 0, sparse),
            ir=block(size, {a: int(w) for a, w in u.get("input", {}).items()}, 0, sparse),
            co=block(size, {a: bool(b) for a, b in u.get("coils", {}).items()}, False, sparse),
            di=block(size, {a: bool(b) for a, b in u.get("discrete", {}).items()}, False, sparse),
            zero_mode=True,
        )
    return Context(slaves, spec.get("control"))


async def serve_serial(spec, stop):
    serial = spec["serial"]
    framer = {"rtu": ModbusRtuFramer, "ascii": ModbusAsciiFramer}[serial.get("framer", "rtu")]
    server = await StartAsyncSerialServer(
        context=build_context(spec),
        framer=framer,
        port=serial["port"],
        baudrate=int(serial.get("baudrate", 19200)),
        defer_start=True,
        ignore_missing_slaves=True,
    )
    await server.start()
    if server.transport is None:
        raise OSError(f"cannot open serial port {serial['port']}")
    print(f"READY {serial['port']}", flush=True)
    await stop.wait()
    await server.shutdown()


async def serve(spec):
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if spec.get("serial"):
        await serve_serial(spec, stop)
        return

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
