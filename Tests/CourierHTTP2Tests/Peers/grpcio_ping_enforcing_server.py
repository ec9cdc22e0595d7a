"""A grpcio (gRPC C-core) echo server with the ping enforcement options set, for Courier's client keepalive.

Usage: python3 grpcio_ping_enforcing_server.py MIN_PING_INTERVAL_MS MAX_PING_STRIKES PERMIT_WITHOUT_CALLS
Listens on a free port on 127.0.0.1, prints 'PORT <n>' and serves /echo.Echo/Get (raw bytes) until stdin
closes. The arguments become grpc.http2.min_ping_interval_without_data_ms, grpc.http2.max_ping_strikes
and grpc.keepalive_permit_without_calls: a client that pings more often than that gets GOAWAY
ENHANCE_YOUR_CALM "too_many_pings".
"""
import sys
from concurrent import futures

import grpc

min_interval, strikes, permit = (int(argument) for argument in sys.argv[1:4])
ident = lambda b: b  # noqa: E731
handlers = {"Get": grpc.unary_unary_rpc_method_handler(lambda request, context: request, ident, ident)}
server = grpc.server(
    futures.ThreadPoolExecutor(max_workers=4),
    options=[
        ("grpc.http2.min_ping_interval_without_data_ms", min_interval),
        ("grpc.http2.max_ping_strikes", strikes),
        ("grpc.keepalive_permit_without_calls", permit),
    ],
)
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"PORT {port}", flush=True)
sys.stdin.read()  # until the test closes stdin
server.stop(0)
