#!/usr/bin/env python3
"""Writes the committed seed corpora of the fuzz targets (Tests/Fuzz/Corpus/TARGET/seed-*): small valid
inputs in each target's input format (see the comment at the top of each Tests/Fuzz/Targets/TARGET/main.swift).
Deterministic (except fuzz-tls's, which hold fresh key shares); run it again after changing a format:

    python3 Tests/Fuzz/make-seeds.py

Needs the h2 package (with hpack), as the transport tests do.
"""
import gzip
import os
import shutil
import struct
import zlib

import h2.config
import h2.connection
import h2.events

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Corpus")


def write(target, seeds):
    directory = os.path.join(ROOT, target)
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    for index, seed in enumerate(seeds):
        with open(os.path.join(directory, "seed-%02d" % index), "wb") as f:
            f.write(seed)


def frame(message, compressed=False):
    return bytes([1 if compressed else 0]) + struct.pack(">I", len(message)) + message


def field(data):
    data = data.encode() if isinstance(data, str) else data
    assert len(data) < 256
    return bytes([len(data)]) + data


def deflate(data):
    return zlib.compress(data)


def gzipped(data):
    return gzip.compress(data, mtime=0)


# --- fuzz-deframer: [limit choice][chunk seed][compression allowed][body...]
bodies = [
    b"",
    frame(b""),
    frame(b"hello"),
    frame(b"hello") + frame(b"world") + frame(b""),
    frame(b"x" * 300),
    frame(b"abc", compressed=True),
    b"\x00\x00\x00\x00",  # cut inside a prefix
    b"\x00\x00\x00\x00\x10abc",  # cut inside a message
    b"\x02\x00\x00\x00\x00",  # bad flag
    b"\x00\x7f\xff\xff\xff" + b"lie",  # a prefix that lies
]
write("fuzz-deframer", [bytes([limit, seed, allowed]) + body
                        for limit, seed, allowed, body in
                        [(0, 0, 0, b) for b in bodies] + [(4, 3, 1, b) for b in bodies[2:6]] +
                        [(3, 1, 0, frame(b"y" * 17)), (2, 7, 1, frame(b"z") * 8)]])

# --- fuzz-deframer-compressed: [algorithm][limit choice][chunk seed][body...]; 0 gzip, 1 deflate, 2 identity
payload = b"The quick brown fox jumps over the lazy dog. " * 4
write("fuzz-deframer-compressed", [
    bytes([0, 0, 0]) + frame(gzipped(payload), True),
    bytes([1, 0, 0]) + frame(deflate(payload), True),
    bytes([0, 0, 5]) + frame(gzipped(b"a"), True) + frame(b"plain") + frame(gzipped(b""), True),
    bytes([1, 3, 2]) + frame(deflate(b"\x00" * 5000), True),  # over a 100-byte limit: a small bomb
    bytes([0, 4, 0]) + frame(gzipped(b"\x00" * 200000), True),  # over 64 KiB
    bytes([0, 0, 0]) + frame(gzipped(payload)[:-4], True),  # truncated
    bytes([1, 0, 0]) + frame(deflate(payload) + b"junk", True),  # trailing garbage
    bytes([2, 0, 0]) + frame(b"identity") + frame(b"x", True),
    bytes([0, 1, 9]) + frame(gzipped(payload) + gzipped(payload), True),  # two members
])

# --- fuzz-grpc-timeout: a value, or 0xFF and 16 bytes of a Duration
values = ["1S", "100m", "99999999H", "0n", "12345678u", "5M", "1H", "00000001n", "123456789S", "-1S", "1", "S",
          "1s", "1 S", "+1S"]
write("fuzz-grpc-timeout", [v.encode() for v in values] + [
    b"\xff" + struct.pack(">qq", 1, 500_000_000_000_000_000),
    b"\xff" + struct.pack(">qq", 360_000_000_000, 0),
    b"\xff" + struct.pack(">qq", 0, 1),
    b"\xff" + struct.pack(">qq", -5, 0),
])

# --- fuzz-grpc-message: a header value
write("fuzz-grpc-message", [
    b"", b"plain message", b"100%25 done", b"%E2%98%BA smile", b"%F0%9F%98%88", b"bad %zz %4", b"%", b"%%",
    "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n".encode(), b"\xff\xfe",
])

# --- fuzz-metadata: [name field][value field]...
write("fuzz-metadata", [
    field("x-key") + field("value"),
    field("x-key-bin") + field("AAEC") + field("x-key-bin") + field("AAE=") + field("x-other-bin") + field("AA,AQ"),
    field("x-key-bin") + field("!!not base64"),
    field("content-type") + field("application/grpc") + field(":path") + field("/a/b"),
    field("x-trim") + field("  padded\t"),
    field("x-empty-bin") + field(""),
    field("authorization") + field("Bearer token") + field("user-agent") + field("fuzz"),
])

# --- fuzz-request-head: [limit choice][end stream][name field][value field]...
valid = [(":method", "POST"), (":scheme", "http"), (":path", "/echo.Echo/Get"), (":authority", "localhost"),
         ("content-type", "application/grpc"), ("te", "trailers")]


def head(fields, limit=0, end=0):
    return bytes([limit, end]) + b"".join(field(n) + field(v) for n, v in fields)


write("fuzz-request-head", [
    head(valid),
    head(valid + [("grpc-timeout", "1S"), ("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip,deflate")]),
    head(valid + [("x-meta", "v"), ("x-meta-bin", "AAEC"), ("user-agent", "grpc-python/1.0")]),
    head(valid + [("grpc-timeout", "bad")]),
    head(valid + [("grpc-encoding", "br")]),
    head(valid + [("x-meta-bin", "***")]),
    head([(":method", "GET")] + valid[1:]),
    head(valid[:4] + [("content-type", "application/json")]),
    head(valid[:2] + valid[3:]),
    head(valid, limit=1),
    head(valid + [("content-type", "application/grpc+proto;charset=utf-8")], end=1),
])

# --- fuzz-response-head: blocks of [kind][field count][fields...]; kind bit 0 END_STREAM, bit 1 DATA follows
def block(fields, kind=0, data=None):
    out = bytes([kind | (2 if data is not None else 0), len(fields)])
    out += b"".join(field(n) + field(v) for n, v in fields)
    if data is not None:
        out += field(data)
    return out


ok_head = [(":status", "200"), ("content-type", "application/grpc")]
write("fuzz-response-head", [
    block(ok_head, data=frame(b"reply")) + block([("grpc-status", "0")], kind=1),
    block(ok_head + [("grpc-status", "5"), ("grpc-message", "not%20found")], kind=1),
    block(ok_head + [("grpc-encoding", "gzip")], data=frame(gzipped(b"zipped"), True)) + block([("grpc-status", "0")], 1),
    block([(":status", "404")], kind=1),
    block([(":status", "200"), ("content-type", "text/html")], kind=1),
    block([(":status", "100")]) + block(ok_head) + block([("grpc-status", "0"), ("x-t-bin", "AAEC")], kind=1),
    block(ok_head, data=frame(b"cut")[:4]) + block([("grpc-status", "0")], kind=1),
    block(ok_head + [("x-bad-bin", "@@")]),
    block(ok_head + [("grpc-encoding", "snappy")]),
    block(ok_head, data=frame(b"m")) + block([("grpc-status", "99")], kind=1),
    block(ok_head),  # ends without trailers
])

# --- fuzz-protobuf: [message type][bytes]; 0 SimpleRequest, 1 StreamingOutputCallRequest, 2 SimpleResponse,
# 3 google.rpc.Status
def varint(value):
    out = b""
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def tag(number, wire):
    return varint(number << 3 | wire)


def ld(number, data):
    data = data.encode() if isinstance(data, str) else data
    return tag(number, 2) + varint(len(data)) + data


def vi(number, value):
    return tag(number, 0) + varint(value)


payload_msg = vi(1, 0) + ld(2, b"\x00" * 16)
write("fuzz-protobuf", [
    b"\x00",
    b"\x00" + vi(1, 0) + vi(2, 314159) + ld(3, payload_msg) + vi(4, 1) + vi(5, 1),
    b"\x00" + ld(6, vi(1, 1)) + ld(7, vi(1, 2) + ld(2, "echo me")) + ld(8, vi(1, 1)),
    b"\x01" + ld(2, vi(1, 31415) + vi(2, 0)) + ld(2, vi(1, 9) + ld(3, vi(1, 1))) + ld(3, payload_msg),
    b"\x02" + ld(1, payload_msg) + ld(2, "user") + ld(3, "scope"),
    b"\x03" + vi(1, 3) + ld(2, "bad name") + ld(3, ld(1, "type.googleapis.com/google.rpc.BadRequest") + ld(2, b"\x0a\x00")),
    b"\x00" + tag(99, 5) + b"\x01\x02\x03\x04" + tag(100, 1) + b"\x00" * 8,  # unknown fields
    b"\x00" + ld(3, payload_msg)[:-3],  # truncated
])


# --- fuzz-server-connection: [chunk seed][client bytes]
def client_bytes(requests, extra=None, settings=None):
    """requests: (path, headers, messages, end) tuples sent on new streams."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    connection.initiate_connection()
    if settings:
        connection.update_settings(settings)
    for path, headers, messages, end in requests:
        stream = connection.get_next_available_stream_id()
        connection.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", path),
                                         (":authority", "localhost"), ("content-type", "application/grpc"),
                                         ("te", "trailers")] + headers)
        for message in messages:
            for start in range(0, max(1, len(message)), 16384):
                connection.send_data(stream, message[start:start + 16384])
        if end:
            connection.end_stream(stream)
    if extra:
        extra(connection)
    data = connection.data_to_send()
    # The preface and SETTINGS are 24 + 9 + 6n bytes; a SETTINGS ACK (of the server's) follows them.
    settings_end = 24 + 9 + int.from_bytes(data[24:27], "big")
    return data[:settings_end] + b"\x00\x00\x00\x04\x01\x00\x00\x00\x00" + data[settings_end:]


def server_seeds():
    seeds = []
    seeds.append(client_bytes([("/echo.Echo/Get", [], [frame(b"hello")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Get", [("x-echo-a", "1"), ("x-echo-b-bin", "AAEC"),
                                                    ("grpc-timeout", "10S")], [frame(b"m")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Expand", [], [frame(b"a b c d")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Collect", [], [frame(b"1"), frame(b"2"), frame(b"3")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Update", [], [frame(b"x"), frame(b"y")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Fail", [], [frame(b"")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Get", [("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip")],
                                [frame(gzipped(b"zipped"), True)], True)]))
    seeds.append(client_bytes([("/echo.Echo/Get", [("grpc-encoding", "deflate")], [frame(deflate(b"d"), True)], True)]))
    seeds.append(client_bytes([("/no.Such/Method", [], [frame(b"")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Get", [], [frame(b"a"), frame(b"b")], True)]))  # two for unary
    seeds.append(client_bytes([("/echo.Echo/Update", [], [frame(b"x")], False)],
                              extra=lambda c: c.reset_stream(1)))
    seeds.append(client_bytes([("/echo.Echo/Get", [], [frame(b"p")], True)], extra=lambda c: c.ping(b"12345678")))
    seeds.append(client_bytes([("/echo.Echo/Update", [], [], False)], extra=lambda c: c.close_connection()))
    seeds.append(client_bytes([("/echo.Echo/Get", [], [frame(b"w")], True)],
                              extra=lambda c: c.increment_flow_control_window(65535)))
    seeds.append(client_bytes([("/echo.Echo/Get", [], [frame(b"1")], True),
                               ("/echo.Echo/Expand", [], [frame(b"q r")], True),
                               ("/echo.Echo/Update", [], [frame(b"z")], True)]))
    seeds.append(client_bytes([("/echo.Echo/Update", [], [frame(b"x" * 20000)], True)]))  # over the window
    seeds.append(client_bytes([("/echo.Echo/Get", [], [b"\x00\x00\x00"], True)]))  # cut message
    seeds.append(client_bytes([("/echo.Echo/Get", [], [b"\x07\x00\x00\x00\x00"], True)]))  # bad flag
    seeds.append(client_bytes([], settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1,
                                            h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384}))
    # Raw frames h2 won't write: an unknown frame type, a PRIORITY, CONTINUATION after HEADERS.
    preface = client_bytes([])
    seeds.append(preface + b"\x00\x00\x03\xfa\x00\x00\x00\x00\x00abc")
    seeds.append(preface + b"\x00\x00\x05\x02\x00\x00\x00\x00\x01\x00\x00\x00\x00\x10")
    seeds.append(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    seeds.append(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return [bytes([0]) + s for s in seeds] + [bytes([3]) + seeds[0], bytes([1]) + seeds[14], bytes([9]) + seeds[4]]


write("fuzz-server-connection", server_seeds())


# --- fuzz-client-connection: [options][server bytes]; the harness opens the calls described in its main.swift
def server_bytes(respond):
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    client.initiate_connection()
    for _ in range(4):
        stream = client.get_next_available_stream_id()
        client.send_headers(stream, [(":method", "POST"), (":scheme", "http"), (":path", "/echo.Echo/Get"),
                                     (":authority", "localhost"), ("content-type", "application/grpc"),
                                     ("te", "trailers")])
        client.send_data(stream, frame(b"request"), end_stream=True)
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    server.data_to_send()  # keep only what follows the SETTINGS below
    out = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding=None))
    out.initiate_connection()
    start = out.data_to_send()
    respond(server)
    # The server's SETTINGS, its ACK of the client's, then the responses.
    return start + b"\x00\x00\x00\x04\x01\x00\x00\x00\x00" + server.data_to_send()


ok = [(":status", "200"), ("content-type", "application/grpc")]


def unary(server, stream=1, message=b"reply", status="0", extra=()):
    server.send_headers(stream, ok + list(extra))
    server.send_data(stream, frame(message))
    server.send_headers(stream, [("grpc-status", status), ("grpc-message", "ok%20then")], end_stream=True)


write("fuzz-client-connection", [bytes([o]) + s for o, s in [
    (0, server_bytes(lambda s: unary(s))),
    (1, server_bytes(lambda s: [unary(s, i) for i in (1, 3, 5, 7)])),
    (0, server_bytes(lambda s: s.send_headers(1, ok + [("grpc-status", "14"), ("grpc-message", "down")],
                                              end_stream=True))),
    (0, server_bytes(lambda s: (s.send_headers(1, ok + [("grpc-encoding", "gzip")]),
                                s.send_data(1, frame(gzipped(b"zip"), True)),
                                s.send_headers(1, [("grpc-status", "0")], end_stream=True)))),
    (0, server_bytes(lambda s: s.send_headers(1, [(":status", "503")], end_stream=True))),
    (0, server_bytes(lambda s: s.reset_stream(1, 7))),
    (0, server_bytes(lambda s: s.close_connection(0, last_stream_id=1))),
    (0, server_bytes(lambda s: (unary(s), s.ping(b"pingpong")))),
    (0, server_bytes(lambda s: (s.send_headers(1, ok), s.send_data(1, frame(b"x" * 100)[:50])))),
    (0, server_bytes(lambda s: unary(s, extra=[("x-meta-bin", "AAEC"), ("x-meta", "v")]))),
    (2, server_bytes(lambda s: (s.send_headers(1, ok), s.send_data(1, frame(b"no trailers"), end_stream=True)))),
    (0, b""),
    (0, b"HTTP/1.1 400 Bad Request\r\n\r\n"),
]])




# --- fuzz-tls: [mode][chunk seed][records]; a ClientHello (for the server modes) and, for the client mode,
# a server's first flight (to another ClientHello: it fails, after OpenSSL has parsed it). The server's
# certificate comes from a throwaway PKI (dev/make-test-certs.sh).
def tls_seeds():
    import ssl
    import subprocess
    import tempfile

    def client_hello(alpn=("h2",), server_name="localhost", version=None):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(list(alpn))
        if version:
            context.maximum_version = version
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        connection = context.wrap_bio(incoming, outgoing, server_hostname=server_name)
        try:
            connection.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return outgoing.read(), (context, incoming, outgoing, connection)

    seeds = []
    hello, _ = client_hello()
    hello12, _ = client_hello(version=ssl.TLSVersion.TLSv1_2)
    hello_http1, _ = client_hello(alpn=("http/1.1",))
    seeds += [bytes([0, 0]) + hello, bytes([0, 0]) + hello12, bytes([0, 0]) + hello_http1, bytes([2, 0]) + hello,
              bytes([0, 5]) + hello, bytes([0, 0]) + hello[:40], bytes([0, 0]) + b"\x16\x03\x01\x00\x00"]
    with tempfile.TemporaryDirectory() as pki:
        subprocess.run([os.path.join(os.path.dirname(ROOT), "..", "..", "dev", "make-test-certs.sh"), pki],
                       check=True, stdout=subprocess.DEVNULL)
        server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server.load_cert_chain(os.path.join(pki, "server.pem"), os.path.join(pki, "server.key"))
        server.set_alpn_protocols(["h2"])
        for hello_bytes in (hello, hello12):
            incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
            connection = server.wrap_bio(incoming, outgoing, server_side=True)
            incoming.write(hello_bytes)
            try:
                connection.do_handshake()
            except ssl.SSLWantReadError:
                pass
            seeds.append(bytes([1, 0]) + outgoing.read())
    seeds.append(bytes([1, 0]) + b"\x15\x03\x03\x00\x02\x02\x28")  # a fatal alert
    return seeds


write("fuzz-tls", tls_seeds())
print("wrote", ROOT)
