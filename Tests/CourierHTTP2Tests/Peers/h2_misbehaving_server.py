"""A small HTTP/2 server (Python h2) that misbehaves in one chosen way, to test Courier's client against it.

Usage: python3 h2_misbehaving_server.py MODE [--tls CERT KEY] [--delay SECONDS] [--pings N] [--events]
Prints 'PORT <n>' once listening; serves until stdin closes. A well-behaved answer echoes the request's
gRPC body with grpc-status 0 and the trailer x-connection: <connection number>.

--tls serves TLS (ALPN h2) with that certificate and key. With --events (implied by the keepalive, stall
and TLS modes) it prints, one line each, as explicit signals for the test:
  CONNECTION <c>                       a connection was accepted
  PING <c> <k> <ms since previous>     the k-th PING (not an ACK) arrived on connection c
  REQUEST <c> <stream>                 a request's HEADERS arrived
  GOAWAY <c>                           it sent GOAWAY too_many_pings on connection c
  CLOSED <c> <how>                     connection c ended: close_notify, eof_without_close_notify (TLS),
                                       eof (cleartext), or error

Modes:
  goaway-first         the first connection answers its first request with GOAWAY(last-stream-id 0)
  refuse-first         the first stream of the first connection is reset with REFUSED_STREAM
  refuse-always        every stream is reset with REFUSED_STREAM
  http-503             :status 503, no grpc-status
  http-404             :status 404, no grpc-status
  wrong-content-type   :status 200, content-type text/html, then grpc-status 0
  invalid-grpc-status  grpc-status: banana
  huge-prefix          a message prefix of 2 GiB, then grpc-status 0
  truncated            a message prefix of 100 bytes with 10 bytes of data, then grpc-status 0
  unknown-encoding     grpc-encoding: snappy with a compressed message
  compressed-no-encoding  a compressed message without grpc-encoding
  rst-internal         RST_STREAM(INTERNAL_ERROR) after the response headers
  duplicate-headers    a second block of response headers (with :status) where the trailers belong
  header-flood         1,000 response headers of 100 bytes each
  ping-flood           1,000 PINGs before the answer
  garbage              garbage bytes instead of SETTINGS
  garbage-open         garbage bytes instead of SETTINGS, and the socket kept open (until stdin closes)
  blackhole-first      the first connection goes silent once its first request arrives: no answer, no PING
                       ACK, nothing (a peer cut off by a NAT); later connections are well-behaved
  ack-late             every write after a PING waits --delay seconds (so the PING's ACK is late); a request
                       is answered once --pings PINGs have arrived on its connection
  too-many-pings       the --pings-th PING on a connection is answered with GOAWAY(ENHANCE_YOUR_CALM,
                       "too_many_pings") and the connection is closed (a server's ping enforcement)
  stall-handshake      accepts, then sends nothing at all (no SETTINGS; with --tls, no ServerHello)
  stall-connect        also listens on a second port whose accept queue is full, so a connect to it never
                       completes (printed as 'STALLED <port>' after PORT); PORT itself is well-behaved
  tls-close-notify     (--tls) answers a request's headers, then ends TLS with close_notify mid-stream
  tls-truncate         (--tls) answers a request's headers, then closes the socket without close_notify
  any other mode       well-behaved
"""
import socket
import ssl
import sys
import threading
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

mode = sys.argv[1]
arguments = sys.argv[2:]


def option(name, default=None, count=1):
    if name not in arguments:
        return default
    index = arguments.index(name)
    values = arguments[index + 1:index + 1 + count]
    return values[0] if count == 1 else values


tls_files = option("--tls", count=2)
delay = float(option("--delay", "0"))
pings_needed = int(option("--pings", "3"))
events = "--events" in arguments or tls_files is not None or mode in (
    "blackhole-first", "ack-late", "too-many-pings", "stall-handshake", "stall-connect")
tls_context = None
if tls_files:
    tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_context.load_cert_chain(tls_files[0], tls_files[1])
    tls_context.set_alpn_protocols(["h2"])

listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(f"PORT {listener.getsockname()[1]}", flush=True)
if mode == "stall-connect":
    # An accept queue of one, filled and never accepted: the kernel drops further SYNs, so a connect
    # stays in SYN_SENT (retransmitting) until the client gives up.
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(0)
    filler = socket.create_connection(stalled.getsockname())
    print(f"STALLED {stalled.getsockname()[1]}", flush=True)
counter = {"connections": 0, "streams": 0}
lock = threading.Lock()
print_lock = threading.Lock()


def event(text):
    if events:
        with print_lock:
            print(text, flush=True)


def receive(sock):
    """Reads; returns b'' at the end, with how it ended printed by the caller's serve()."""
    return sock.recv(65536)


def ending(sock, error=None):
    if error is not None:
        return "eof_without_close_notify" if isinstance(error, ssl.SSLEOFError) else "error"
    return "close_notify" if isinstance(sock, ssl.SSLSocket) else "eof"


def grpc_frame(payload, compressed=False):
    return bytes([1 if compressed else 0]) + len(payload).to_bytes(4, "big") + payload


def serve(sock, number):
    event(f"CONNECTION {number}")
    if mode == "stall-handshake":
        # Silence: read (and drop) whatever comes until the client gives up.
        how = "eof"
        try:
            while sock.recv(65536):
                pass
        except OSError:
            how = "error"
        event(f"CLOSED {number} {how}")
        sock.close()
        return
    if tls_context is not None:
        try:
            sock = tls_context.wrap_socket(sock, server_side=True, suppress_ragged_eofs=False)
        except (ssl.SSLError, OSError):
            event(f"CLOSED {number} error")
            return
    how = serve_h2(sock, number)
    event(f"CLOSED {number} {how}")
    try:
        sock.close()
    except OSError:
        pass


def serve_h2(sock, number):
    if mode in ("garbage", "garbage-open"):
        sock.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"\xff" * 64)
        if mode == "garbage-open":
            # Keep the socket open, reading what comes, until the client closes it (or 60 s pass).
            sock.settimeout(60)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        sock.close()
        return "eof"
    config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8", validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    bodies = {}
    # Requests that ended, waiting for enough PINGs (ack-late).
    ended = {}
    pings = 0
    last_ping = None
    silent = False
    while True:
        try:
            data = sock.recv(65536)
        except (ssl.SSLError, OSError) as error:
            return ending(sock, error)
        if not data:
            return ending(sock)
        try:
            received = conn.receive_data(data)
        except Exception:  # noqa: BLE001 - the client broke the protocol: drop it
            sock.close()
            return "error"
        pinged = False
        for item in received:
            if isinstance(item, h2.events.PingReceived):
                pings += 1
                pinged = True
                now = time.monotonic()
                interval = 0 if last_ping is None else int((now - last_ping) * 1000)
                last_ping = now
                event(f"PING {number} {pings} {interval}")
                if mode == "too-many-pings" and pings >= pings_needed:
                    # The ACK h2 queued goes first, then the GOAWAY; then the connection is closed at once,
                    # as gRFC A8 asks of an enforcing server.
                    conn.close_connection(
                        error_code=h2.errors.ErrorCodes.ENHANCE_YOUR_CALM, additional_data=b"too_many_pings",
                        last_stream_id=conn.highest_inbound_stream_id or 0,
                    )
                    try:
                        sock.sendall(conn.data_to_send())
                    except OSError:
                        pass
                    event(f"GOAWAY {number}")
                    return "closed_by_server"
            elif isinstance(item, h2.events.RequestReceived):
                event(f"REQUEST {number} {item.stream_id}")
                bodies[item.stream_id] = b""
                with lock:
                    counter["streams"] += 1
                    first_stream = counter["streams"] == 1
                if mode == "goaway-first" and number == 1:
                    conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
                    sock.sendall(conn.data_to_send())
                    # Keep the socket open (a client must act on the GOAWAY, not on the connection closing).
                    while sock.recv(65536):
                        pass
                    return "eof"
                elif mode == "blackhole-first" and number == 1:
                    silent = True
                elif mode == "refuse-always" or (mode == "refuse-first" and first_stream):
                    conn.reset_stream(item.stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                    bodies.pop(item.stream_id, None)
                elif mode in ("tls-close-notify", "tls-truncate"):
                    conn.send_headers(item.stream_id, [(":status", "200"), ("content-type", "application/grpc")])
                    sock.sendall(conn.data_to_send())
                    if mode == "tls-close-notify":
                        sock.unwrap().close()  # close_notify, then the socket
                    else:
                        sock.shutdown(socket.SHUT_RDWR)  # the bytes end without close_notify
                    return "closed_by_server"
            elif isinstance(item, h2.events.DataReceived):
                conn.acknowledge_received_data(item.flow_controlled_length, item.stream_id)
                if item.stream_id in bodies:
                    bodies[item.stream_id] += item.data
            elif isinstance(item, h2.events.StreamEnded) and item.stream_id in bodies:
                if mode == "ack-late":
                    ended[item.stream_id] = bodies.pop(item.stream_id)
                else:
                    respond(conn, item.stream_id, bodies.pop(item.stream_id), number)
        if mode == "ack-late" and pings >= pings_needed:
            for stream, body in ended.items():
                respond(conn, stream, body, number)
            ended = {}
        if silent:
            continue  # nothing goes out any more: not even the PING ACKs h2 queued
        out = conn.data_to_send()
        if out:
            if pinged and delay > 0:
                time.sleep(delay)  # the behaviour under test: a late ACK
            try:
                sock.sendall(out)
            except OSError as error:
                return ending(sock, error)


def respond(conn, stream, body, number):
    ok_headers = [(":status", "200"), ("content-type", "application/grpc")]
    trailers = [("grpc-status", "0"), ("x-connection", str(number))]
    if mode == "http-503":
        conn.send_headers(stream, [(":status", "503"), ("content-type", "text/plain")], end_stream=True)
    elif mode == "http-404":
        conn.send_headers(stream, [(":status", "404")], end_stream=True)
    elif mode == "wrong-content-type":
        conn.send_headers(stream, [(":status", "200"), ("content-type", "text/html")])
        conn.send_data(stream, b"<html></html>")
        conn.send_headers(stream, trailers, end_stream=True)
    elif mode == "invalid-grpc-status":
        conn.send_headers(stream, ok_headers)
        conn.send_headers(stream, [("grpc-status", "banana")], end_stream=True)
    elif mode == "huge-prefix":
        conn.send_headers(stream, ok_headers)
        conn.send_data(stream, b"\x00\x80\x00\x00\x00" + b"x" * 100)
        conn.send_headers(stream, trailers, end_stream=True)
    elif mode == "truncated":
        conn.send_headers(stream, ok_headers)
        conn.send_data(stream, b"\x00\x00\x00\x00\x64" + b"x" * 10)
        conn.send_headers(stream, trailers, end_stream=True)
    elif mode == "unknown-encoding":
        conn.send_headers(stream, ok_headers + [("grpc-encoding", "snappy")])
        conn.send_data(stream, grpc_frame(b"zzzz", compressed=True))
        conn.send_headers(stream, trailers, end_stream=True)
    elif mode == "compressed-no-encoding":
        conn.send_headers(stream, ok_headers)
        conn.send_data(stream, grpc_frame(b"zzzz", compressed=True))
        conn.send_headers(stream, trailers, end_stream=True)
    elif mode == "rst-internal":
        conn.send_headers(stream, ok_headers)
        conn.reset_stream(stream, error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
    elif mode == "duplicate-headers":
        # A second block of response headers where the trailers belong (pseudo-headers in trailers).
        conn.send_headers(stream, ok_headers)
        conn.send_data(stream, body)
        conn.send_headers(stream, ok_headers + trailers, end_stream=True)
    elif mode == "header-flood":
        conn.send_headers(stream, ok_headers + [(f"x-flood-{i}", "v" * 100) for i in range(1000)])
        conn.send_data(stream, body)
        conn.send_headers(stream, trailers, end_stream=True)
    elif mode == "ping-flood":
        for i in range(1000):
            conn.ping(i.to_bytes(8, "big"))
        conn.send_headers(stream, ok_headers)
        conn.send_data(stream, body)
        conn.send_headers(stream, trailers, end_stream=True)
    else:
        conn.send_headers(stream, ok_headers)
        conn.send_data(stream, body)
        conn.send_headers(stream, trailers, end_stream=True)


def accept_loop():
    while True:
        sock, _ = listener.accept()
        with lock:
            counter["connections"] += 1
            number = counter["connections"]
        threading.Thread(target=serve, args=(sock, number), daemon=True).start()


threading.Thread(target=accept_loop, daemon=True).start()
sys.stdin.read()
