"""grpcio's client keepalive against a Courier server: pings every 100 ms, with and without calls.

Usage: python3 grpcio_keepalive_client.py PORT HOLD_SECONDS
First a unary call to /echo.Echo/Get (the connection is up), then /echo.Echo/Hold, which the server holds
until it is cancelled, with a deadline of HOLD_SECONDS. (grpcio sends at most one PING a second whatever its
settings, so the hold must last a few seconds for a strict server to count enough strikes.) Prints 'OK' if the connection survived (the hold ends with the
deadline, DEADLINE_EXCEEDED, and a second Get succeeds on the same channel) or the status the hold ended with
(UNAVAILABLE with too_many_pings when the server's ping policy is strict), then the error details.
"""
import sys

import grpc

port, hold_seconds = int(sys.argv[1]), float(sys.argv[2])
options = [
    ("grpc.keepalive_time_ms", 100),
    ("grpc.keepalive_timeout_ms", 1000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
]
channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
get = channel.unary_unary("/echo.Echo/Get")
hold = channel.unary_unary("/echo.Echo/Hold")
print("GET", get(b"\x01", timeout=10), flush=True)
try:
    hold(b"", timeout=hold_seconds)
    print("HOLD returned", flush=True)
except grpc.RpcError as error:
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
        print("GET again", get(b"\x02", timeout=10), flush=True)
        print("OK", flush=True)
    else:
        print(error.code().name, error.details(), flush=True)
        print(getattr(error, "debug_error_string", lambda: "")(), flush=True)
