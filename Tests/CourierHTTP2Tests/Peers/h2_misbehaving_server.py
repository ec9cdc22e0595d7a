"""A small HTTP/2 server (Python h2) that misbehaves in one chosen way, to test Courier's client against it.

Usage: python3 h2_misbehaving_server.py MODE
Prints 'PORT <n>' once listening; serves until stdin closes. A well-behaved answer echoes the request's
gRPC body with grpc-status 0 and the trailer x-connection: <connection number>.

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
"""
import socket
import sys
import threading

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings

mode = sys.argv[1]
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(f"PORT {listener.getsockname()[1]}", flush=True)
counter = {"connections": 0, "streams": 0}
lock = threading.Lock()


def grpc_frame(payload, compressed=False):
    return bytes([1 if compressed else 0]) + len(payload).to_bytes(4, "big") + payload


def serve(sock, number):
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
        return
    config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8", validate_outbound_headers=False,
                                       normalize_outbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    bodies = {}
    while True:
        try:
            data = sock.recv(65536)
        except OSError:
            return
        if not data:
            return
        try:
            events = conn.receive_data(data)
        except Exception:  # noqa: BLE001 - the client broke the protocol: drop it
            sock.close()
            return
        for event in events:
            if isinstance(event, h2.events.RequestReceived):
                bodies[event.stream_id] = b""
                with lock:
                    counter["streams"] += 1
                    first_stream = counter["streams"] == 1
                if mode == "goaway-first" and number == 1:
                    conn.close_connection(error_code=h2.errors.ErrorCodes.NO_ERROR, last_stream_id=0)
                    sock.sendall(conn.data_to_send())
                    # Keep the socket open (a client must act on the GOAWAY, not on the connection closing).
                    while sock.recv(65536):
                        pass
                    return
                elif mode == "refuse-always" or (mode == "refuse-first" and first_stream):
                    conn.reset_stream(event.stream_id, error_code=h2.errors.ErrorCodes.REFUSED_STREAM)
                    bodies.pop(event.stream_id, None)
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                if event.stream_id in bodies:
                    bodies[event.stream_id] += event.data
            elif isinstance(event, h2.events.StreamEnded) and event.stream_id in bodies:
                respond(conn, event.stream_id, bodies.pop(event.stream_id), number)
        out = conn.data_to_send()
        if out:
            sock.sendall(out)


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
