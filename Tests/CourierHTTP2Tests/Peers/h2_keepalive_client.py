"""A raw HTTP/2 client for the server's connection management: keepalive, ping enforcement, idle and age
limits, the two-phase GOAWAY. It prints one line per event, flushed, and stops at EOF or after a time limit.

Usage: python3 h2_keepalive_client.py PORT MODE [SECONDS [PINGS]]
With PINGS, the client stops (printing DONE) once it has received that many PINGs.
Lines: READY, PING payload=<hex> ack=<0|1>, GOAWAY last=<id> code=<name> debug=<text>,
       STATUS stream=<id> grpc-status=<n>, RST_STREAM stream=<id> code=<name>, SENT stream=<id>, CLOSED, TIMEOUT.

Modes:
  silent        never ACKs PINGs (nor the server's SETTINGS): a dead peer
  ping-flood    PINGs every 10 ms with no stream open, ACKing the server's frames
  idle          ACKs everything and does nothing: waits for the server to drain an idle connection
  race-goaway   ACKs everything; prints READY on the server's SETTINGS; on the first GOAWAY opens a stream
                *before* ACKing its PING
  hold-stream   opens a stream on /echo.Echo/Hold (which runs until cancelled) and waits
"""
import socket
import struct
import sys
import time

import hpack

PORT, MODE = int(sys.argv[1]), sys.argv[2]
LIMIT = float(sys.argv[3]) if len(sys.argv) > 3 else 10.0
STOP_AFTER_PINGS = int(sys.argv[4]) if len(sys.argv) > 4 else None
pings_received = 0
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY = 0, 1, 3, 4, 6, 7
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 8: "CANCEL", 11: "ENHANCE_YOUR_CALM"}
encoder = hpack.Encoder()
decoder = hpack.Decoder()


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def say(line):
    print(line, flush=True)


def request(stream, path):
    block = encoder.encode([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                            ("content-type", "application/grpc"), ("te", "trailers")])
    message = b"\x00" + struct.pack(">I", 2) + b"hi"
    return frame(HEADERS, END_HEADERS, stream, block) + frame(DATA, END_STREAM, stream, message)


sock = socket.create_connection(("127.0.0.1", PORT))
deadline = time.monotonic() + LIMIT
acks = MODE != "silent"
sock.sendall(PREFACE + frame(SETTINGS, 0, 0))
if MODE == "hold-stream":
    sock.sendall(request(1, "/echo.Echo/Hold"))
    say("SENT stream=1")
next_ping = time.monotonic()
pings_sent = 0
next_stream = 1
goaways = 0
buffer = b""


def handle(kind, flags, stream, payload):
    global next_stream, goaways, pings_received
    if kind == SETTINGS and not flags & ACK and acks:
        sock.sendall(frame(SETTINGS, ACK, 0))
        if MODE == "race-goaway":
            say("READY")  # the server has taken the connection: its SETTINGS are here
    elif kind == PING:
        say(f"PING payload={payload.hex()} ack={flags & ACK}")
        if not flags & ACK:
            pings_received += 1
        if not flags & ACK and acks:
            if MODE == "race-goaway" and goaways == 1 and next_stream == 1:
                # The stream races the first GOAWAY: it leaves before the PING's ACK.
                sock.sendall(request(next_stream, "/echo.Echo/Get"))
                say(f"SENT stream={next_stream}")
                next_stream += 2
            sock.sendall(frame(PING, ACK, 0, payload))
    elif kind == GOAWAY:
        last, code = struct.unpack(">II", payload[:8])
        goaways += 1
        say(f"GOAWAY last={last & 0x7FFFFFFF} code={ERRORS.get(code, code)} debug={payload[8:].decode(errors='replace')}")
    elif kind == HEADERS:
        headers = dict(decoder.decode(payload))
        if "grpc-status" in headers:
            say(f"STATUS stream={stream} grpc-status={headers['grpc-status']}")
    elif kind == RST_STREAM:
        say(f"RST_STREAM stream={stream} code={ERRORS.get(struct.unpack('>I', payload)[0])}")


try:
    while True:
        now = time.monotonic()
        if now > deadline:
            say("TIMEOUT")
            break
        if MODE == "ping-flood" and now >= next_ping:
            sock.sendall(frame(PING, 0, 0, struct.pack(">Q", pings_sent)))
            pings_sent += 1
            next_ping = now + 0.01
        sock.settimeout(max(0.001, min(deadline - now, 0.01 if MODE == "ping-flood" else deadline - now)))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        if not chunk:
            say("CLOSED")
            break
        buffer += chunk
        while len(buffer) >= 9:
            length = int.from_bytes(buffer[:3], "big")
            if len(buffer) < 9 + length:
                break
            kind, flags = buffer[3], buffer[4]
            stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
            handle(kind, flags, stream, buffer[9:9 + length])
            buffer = buffer[9 + length:]
        if STOP_AFTER_PINGS is not None and pings_received >= STOP_AFTER_PINGS:
            say("DONE")
            break
except (ConnectionResetError, BrokenPipeError):
    say("CLOSED")
