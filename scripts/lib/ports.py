"""Loopback ports for the servers the scripts start.

A port taken by binding to 0 and closing again comes from the kernel's ephemeral range, the
same range outgoing connections draw from: between the pick and the server's bind, one
instance's connection to PostgreSQL or Redis can take it, and the server then fails to start.
Ports are picked below (or above) that range instead, and never twice in one process.
`python3 scripts/lib/ports.py [N]` prints N (default 1), for the shell scripts.
"""

import random
import socket
import sys

_handed_out = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(n) for n in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    low, high = _ephemeral_range()
    pool = range(10000, low) if low - 10000 >= 1000 else range(high + 1, 65536)
    if len(pool) < 1000:
        # Nearly every port is ephemeral here: take one the kernel hands out, as before.
        return _any_port()
    for _ in range(200):
        port = random.choice(pool)
        if port in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {pool.start}..{pool.stop - 1}")


def _any_port():
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


if __name__ == "__main__":
    # `ports.py N`: N distinct ports, one per line (separate calls could repeat one).
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    print("\n".join(str(free_port()) for _ in range(count)))
