"""Loopback ports for the servers tests start, safe beside the suite's other workers."""

from __future__ import annotations

import itertools
import os
import socket

__all__ = ["free_port"]

# Ports below the kernel's ephemeral range (32768-60999 by default), which it never hands
# out by itself, in a block of 1,000 for each xdist worker: a port picked here is taken
# neither by another worker nor by an outgoing connection before the test binds it (a port
# the kernel picked for bind(0) can be, by any connection opened meanwhile).
# A run beside another (make test's unit phase beside its serial phase, whose workers have
# the same names) is given, in PORT_BLOCKS_SKIPPED, how many blocks the other one uses.
_FIRST_PORT, _PORT_BLOCK = 20_000, 1_000
PORT_BLOCKS_SKIPPED = "MLOPS_TEST_PORT_BLOCKS_SKIPPED"
_port_counter = itertools.count()


def free_port() -> int:
    """A loopback port nobody listens on, that nobody else is given until the test binds it."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ... under xdist
    index = int(worker.removeprefix("gw")) + 1 if worker.startswith("gw") else 0
    index += int(os.environ.get(PORT_BLOCKS_SKIPPED, "0"))
    base = _FIRST_PORT + index % 10 * _PORT_BLOCK
    for _ in range(_PORT_BLOCK):
        port = base + next(_port_counter) % _PORT_BLOCK
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError(f"no free loopback port in {base}-{base + _PORT_BLOCK - 1}")
