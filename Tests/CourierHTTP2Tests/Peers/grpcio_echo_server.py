"""A grpcio (gRPC C-core) echo server for testing Courier's client over h2c.

Usage: python3 grpcio_echo_server.py
Listens on a free port on 127.0.0.1, prints 'PORT <n>' and serves until stdin closes.
Methods (raw bytes, no generated code), under /echo.Echo/: Get, Expand, Collect, Update, Fail, Slow.
"""
import sys
import threading
import time
from concurrent import futures

import grpc

SPECIAL = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


def echo_metadata(context):
    initial = [(k, v) for k, v in context.invocation_metadata() if k == "x-echo-initial"]
    trailing = [(k, v) for k, v in context.invocation_metadata() if k == "x-echo-trailing-bin"]
    if initial:
        context.send_initial_metadata(initial)
    if trailing:
        context.set_trailing_metadata(trailing)


def get(request, context):
    echo_metadata(context)
    return request


def expand(request, context):
    for word in request.split(b" "):
        yield word


def collect(request_iterator, context):
    return b" ".join(request_iterator)


def update(request_iterator, context):
    for message in request_iterator:
        yield message


def fail(request, context):
    context.abort(grpc.StatusCode.INVALID_ARGUMENT, SPECIAL)


def slow(request, context):
    while context.is_active():
        time.sleep(0.01)
    return request


ident = lambda b: b
handlers = {
    "Get": grpc.unary_unary_rpc_method_handler(get, ident, ident),
    "Expand": grpc.unary_stream_rpc_method_handler(expand, ident, ident),
    "Collect": grpc.stream_unary_rpc_method_handler(collect, ident, ident),
    "Update": grpc.stream_stream_rpc_method_handler(update, ident, ident),
    "Fail": grpc.unary_unary_rpc_method_handler(fail, ident, ident),
    "Slow": grpc.unary_unary_rpc_method_handler(slow, ident, ident),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), compression=grpc.Compression.Gzip)
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"PORT {port}", flush=True)
sys.stdin.read()  # until the test closes stdin
server.stop(0)
