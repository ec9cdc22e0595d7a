#!/usr/bin/env python3
"""A lossy, slow link between two network namespaces, in user space: what `tc netem` does, for kernels
without the netem qdisc (sch_netem is a module many cloud and container kernels leave out).

It opens a TUN device in each namespace (setns(2) into it, then open /dev/net/tun, so the device belongs to
that namespace) and forwards every IP packet between the two, each one independently:
  - dropped with probability --loss percent;
  - otherwise sent at once with probability --reorder percent (so it overtakes the delayed ones), else after
    --delay milliseconds plus a uniform jitter of +-(--jitter) milliseconds (which reorders too, as netem's
    does).
The same settings apply in both directions, like `netem` on both ends of a veth pair. Packets to a device
that is down are dropped (EIO), which is how a test takes a link down mid-call.

  dev/netem-tun.py --server-ns NS --server-if IF --client-ns NS --client-if IF
                   [--delay MS] [--jitter MS] [--loss PCT] [--reorder PCT] [--seed N] [--ready FILE]

Once both devices exist it writes "ready" to --ready (the caller then gives them addresses and brings them up);
on SIGTERM or SIGINT it prints what it forwarded, dropped and reordered in each direction, and exits 0.
Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
"""

import argparse
import ctypes
import errno
import fcntl
import heapq
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
CLONE_NEWNET = 0x40000000

libc = ctypes.CDLL("libc.so.6", use_errno=True)


def enter_namespace(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"setns({path}): {os.strerror(code)}")
    finally:
        os.close(fd)


def open_tun(namespace, name):
    """A TUN device called `name` in the namespace `namespace` (a name under /run/netns)."""
    enter_namespace(f"/run/netns/{namespace}")
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    def __init__(self, name, source, destination):
        self.name = name
        self.source = source
        self.destination = destination
        self.received = 0
        self.lost = 0
        self.reordered = 0
        self.sent = 0
        self.dropped_down = 0  # the destination device was down (or its queue full)
        self.bytes = 0

    def summary(self):
        return (
            f"{self.name}: {self.received} packets in, {self.lost} lost, {self.reordered} sent early"
            f" (reordered), {self.sent} delivered ({self.bytes} bytes), {self.dropped_down} dropped at a"
            " device that was down"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server-ns", required=True)
    parser.add_argument("--server-if", required=True)
    parser.add_argument("--client-ns", required=True)
    parser.add_argument("--client-if", required=True)
    parser.add_argument("--delay", type=float, default=40.0, help="milliseconds, each way")
    parser.add_argument("--jitter", type=float, default=10.0, help="milliseconds, uniform +-")
    parser.add_argument("--loss", type=float, default=3.0, help="percent of packets, each way")
    parser.add_argument("--reorder", type=float, default=5.0, help="percent of packets sent without delay")
    parser.add_argument("--seed", type=int, default=None, help="for a repeatable run")
    parser.add_argument("--ready", help="a file to write 'ready' to once the devices exist")
    args = parser.parse_args()
    for name in ("loss", "reorder"):
        if not 0 <= getattr(args, name) <= 100:
            parser.error(f"--{name} is a percentage (0 to 100)")
    if args.delay < 0 or args.jitter < 0:
        parser.error("--delay and --jitter are not negative")

    server = open_tun(args.server_ns, args.server_if)
    client = open_tun(args.client_ns, args.client_if)
    directions = {
        client: Direction(f"{args.client_if} -> {args.server_if}", client, server),
        server: Direction(f"{args.server_if} -> {args.client_if}", server, client),
    }
    rng = random.Random(args.seed)
    loss = args.loss / 100
    reorder = args.reorder / 100
    delay = args.delay / 1000
    jitter = args.jitter / 1000

    stopping = False

    def stop(_signal, _frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.ready:
        with open(args.ready, "w") as ready:
            ready.write("ready\n")

    queue = []  # (due, sequence, direction, packet): a heap by due time; sequence keeps equal times in order
    sequence = 0
    while not stopping:
        now = time.monotonic()
        timeout = max(0.0, queue[0][0] - now) if queue else 0.5
        try:
            readable, _, _ = select.select([client, server], [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in readable:
            direction = directions[fd]
            for _ in range(256):  # bounded per wake-up, so one direction cannot starve the other
                try:
                    packet = os.read(fd, 65536)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as error:
                    if error.errno == errno.EIO:  # the device is down: nothing to read
                        break
                    raise
                direction.received += 1
                if rng.random() < loss:
                    direction.lost += 1
                    continue
                if rng.random() < reorder:
                    direction.reordered += 1
                    due = now
                else:
                    due = now + max(0.0, delay + rng.uniform(-jitter, jitter))
                heapq.heappush(queue, (due, sequence, direction, packet))
                sequence += 1
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, direction, packet = heapq.heappop(queue)
            try:
                os.write(direction.destination, packet)
                direction.sent += 1
                direction.bytes += len(packet)
            except OSError as error:
                if error.errno not in (errno.EIO, errno.EAGAIN, errno.ENOBUFS):
                    raise
                direction.dropped_down += 1

    for direction in directions.values():
        print(direction.summary(), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
