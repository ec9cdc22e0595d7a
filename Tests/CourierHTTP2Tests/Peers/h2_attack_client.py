"""A raw HTTP/2 client that sends one kind of bad input to a server and reports how the server answered.

Usage: python3 h2_attack_client.py PORT MODE
Prints one line: what the server did (GOAWAY <error code>, RST_STREAM <code>, grpc-status <n>, :status <n>,
closed, or timeout) and how long the attack took. Frames are built by hand (hpack encodes the headers) so
that they can be as wrong as the case needs.
"""
import socket
import struct
import sys
import time

import hpack

PORT, MODE = int(sys.argv[1]), sys.argv[2]
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0, 1, 3, 4, 6, 7, 8, 9
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1
ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR", 3: "FLOW_CONTROL_ERROR", 5: "STREAM_CLOSED",
          6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL", 9: "COMPRESSION_ERROR", 11: "ENHANCE_YOUR_CALM"}
encoder = hpack.Encoder()


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def header_frames(stream, block, flags=0):
    """A header block as HEADERS plus CONTINUATIONs of at most 16,000 bytes (the default max frame size)."""
    chunks = [block[i:i + 16000] for i in range(0, len(block), 16000)] or [b""]
    frames = b""
    for index, chunk in enumerate(chunks):
        last = END_HEADERS if index == len(chunks) - 1 else 0
        frames += frame(HEADERS if index == 0 else CONTINUATION, (flags if index == 0 else 0) | last, stream, chunk)
    return frames


def request_headers(path="/echo.Echo/Get", extra=()):
    return encoder.encode([(":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "localhost"),
                           ("content-type", "application/grpc"), ("te", "trailers")] + list(extra))


def grpc_message(payload=b"hi"):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


sock = socket.create_connection(("127.0.0.1", PORT))
sock.settimeout(10)
start = time.monotonic()


def send(data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def opening():
    send(PREFACE + frame(SETTINGS, 0, 0))


# ---- the attacks ----------------------------------------------------------------------------------------
if MODE == "garbage-preface":
    send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + b"\x00" * 100)
elif MODE == "unknown-frame":
    opening()
    send(frame(0x42, 0xFF, 0, b"whatever") + frame(0x43, 0, 1, b"x" * 10))
    send(frame(HEADERS, END_HEADERS, 1, request_headers()) + frame(DATA, END_STREAM, 1, grpc_message()))
elif MODE == "request-trailers":
    # Not an attack: a client may end its request with a trailers block (HEADERS with END_STREAM after
    # DATA). The server ends the request there and answers as usual; the trailers are not a second head.
    opening()
    send(frame(HEADERS, END_HEADERS, 1, request_headers()) + frame(DATA, 0, 1, grpc_message()))
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, encoder.encode([("x-request-trailer", "1")])))
elif MODE == "data-on-stream-0":
    opening()
    send(frame(DATA, 0, 0, b"hello"))
elif MODE == "settings-on-stream":
    opening()
    send(frame(SETTINGS, 0, 1))
elif MODE == "bad-frame-size":
    opening()
    send(frame(PING, 0, 0, b"1234567"))  # PING must be 8 bytes
elif MODE == "stream-id-reuse":
    opening()
    send(frame(HEADERS, END_HEADERS, 3, request_headers()) + frame(DATA, END_STREAM, 3, grpc_message()))
    send(frame(HEADERS, END_HEADERS, 1, request_headers()) + frame(DATA, END_STREAM, 1, grpc_message()))
elif MODE == "window-update-overflow":
    opening()
    send(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 0x7FFFFFFF)) * 2)
elif MODE == "data-after-end-stream":
    opening()
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, request_headers()) + frame(DATA, 0, 1, grpc_message()))
elif MODE == "second-message-unary":
    opening()
    send(frame(HEADERS, END_HEADERS, 1, request_headers()) + frame(DATA, END_STREAM, 1, grpc_message() + grpc_message()))
elif MODE == "hpack-bomb":
    # One large header, then thousands of references to it from the dynamic table.
    opening()
    big = hpack.Encoder()
    block = big.encode([(":method", "POST"), (":scheme", "http"), (":path", "/echo.Echo/Get"), (":authority", "l"),
                        ("x-bomb", "b" * 4000)])
    block += bytes([0xBE]) * 30000  # indexed field 62: the newest dynamic entry (x-bomb), 30,000 times (120 MB)
    send(header_frames(1, block))
elif MODE == "header-flood":
    opening()
    send(header_frames(1, request_headers(extra=[(f"x-h{i}", "v" * 50) for i in range(2000)])))
elif MODE == "continuation-flood":
    opening()
    send(frame(HEADERS, 0, 1, request_headers()))
    chunk = frame(CONTINUATION, 0, 1, encoder.encode([("x-c", "c" * 100)]))
    for _ in range(10000):
        if not send(chunk):
            break
elif MODE == "settings-flood":
    opening()
    burst = frame(SETTINGS, 0, 0) * 1000
    for _ in range(100):
        if not send(burst):
            break
elif MODE == "ping-flood":
    opening()
    burst = b"".join(frame(PING, 0, 0, struct.pack(">Q", i)) for i in range(1000))
    for _ in range(100):
        if not send(burst):
            break
elif MODE == "rapid-reset":
    opening()
    for stream in range(1, 2 * 20000, 2):
        if not send(frame(HEADERS, END_HEADERS, stream, request_headers()) + frame(RST_STREAM, 0, stream, struct.pack(">I", 8))):
            break
elif MODE == "slowloris":
    send(PREFACE[:10])  # then nothing: the server must give up on us
    sock.settimeout(60)
else:
    sys.exit(f"unknown mode {MODE}")

# ---- what did the server do? ----------------------------------------------------------------------------
decoder = hpack.Decoder()
decoder.max_allowed_table_size = 1 << 20
buffer = b""
outcome = None
try:
    while outcome is None:
        data = sock.recv(65536)
        if not data:
            outcome = "closed"
            break
        buffer += data
        while len(buffer) >= 9 and outcome is None:
            length = struct.unpack(">I", b"\x00" + buffer[:3])[0]
            if len(buffer) < 9 + length:
                break
            kind, flags = buffer[3], buffer[4]
            stream = struct.unpack(">I", buffer[5:9])[0] & 0x7FFFFFFF
            payload = buffer[9:9 + length]
            buffer = buffer[9 + length:]
            if kind == GOAWAY:
                outcome = f"GOAWAY {ERRORS.get(struct.unpack('>I', payload[4:8])[0], payload[4:8].hex())}"
            elif kind == RST_STREAM and MODE not in ("rapid-reset",):
                outcome = f"RST_STREAM {ERRORS.get(struct.unpack('>I', payload)[0], payload.hex())}"
            elif kind == HEADERS:
                try:
                    headers = dict(decoder.decode(payload))
                except Exception:  # noqa: BLE001
                    continue
                headers = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                           for k, v in headers.items()}
                if MODE == "stream-id-reuse":
                    continue  # the first stream is fine; the reused (lower) id is the violation
                if "grpc-status" in headers:
                    outcome = f"grpc-status {headers['grpc-status']}"
                elif headers.get(":status", "200") != "200":
                    outcome = f":status {headers[':status']}"
            elif kind == SETTINGS and not flags & ACK and MODE != "slowloris":
                send(frame(SETTINGS, ACK, 0))
except socket.timeout:
    outcome = "timeout"
except OSError as error:
    outcome = f"closed ({error.errno})"
print(f"{outcome} after {time.monotonic() - start:.2f} s", flush=True)
