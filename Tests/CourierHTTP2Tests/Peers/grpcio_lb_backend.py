"""A grpcio (gRPC C-core) backend for Courier's load-balancing tests.

Usage: python3 grpcio_lb_backend.py HOST NAME
Listens on a free port of HOST (127.0.0.2, ::1, ...), prints 'PORT <n>' and serves until stdin closes.
Methods (raw bytes) under /echo.Echo/:
  Get   answers 'NAME PEER': the backend's identity and the client's address as grpcio sees it
        (ipv4:127.0.0.1:54321), so a test can tell whether its RPCs kept their connection;
  Hold  prints 'HOLD <k>' when the k-th call arrives, then waits until a 'release' line arrives on stdin
        and answers 'NAME PEER'.
"""
import sys
import threading
from concurrent import futures

import grpc

host, name = sys.argv[1], sys.argv[2].encode()
released = threading.Event()
lock = threading.Lock()
held = [0]


def answer(context):
    return name + b" " + context.peer().encode()


def get(request, context):
    return answer(context)


def hold(request, context):
    with lock:
        held[0] += 1
        print(f"HOLD {held[0]}", flush=True)
    released.wait(60)  # a failure bound: the test releases long before
    return answer(context)


ident = lambda b: b
handlers = {
    "Get": grpc.unary_unary_rpc_method_handler(get, ident, ident),
    "Hold": grpc.unary_unary_rpc_method_handler(hold, ident, ident),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("echo.Echo", handlers),))
port = server.add_insecure_port(f"[{host}]:0" if ":" in host else f"{host}:0")
server.start()
print(f"PORT {port}", flush=True)
for line in sys.stdin:  # until the test closes stdin
    if line.strip() == "release":
        released.set()
server.stop(0)
