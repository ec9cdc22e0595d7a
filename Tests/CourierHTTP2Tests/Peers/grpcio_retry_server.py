"""A grpcio (gRPC C-core) server that fails or stalls by attempt number, for Courier's retry and hedging tests.

Usage: python3 grpcio_retry_server.py
Listens on a free port of 127.0.0.1, prints 'PORT <n>' and serves until stdin closes.

The request (raw bytes, under /retry.Retry/) is a list of directives, 'fail=2 code=14 pushback=50 stall=1':
the attempt number is 1 + the request's grpc-previous-rpc-attempts. Each attempt prints
'ATTEMPT <n> PREVIOUS <header or ->'; then
  attempt <= stall: prints 'STALLED <n>' and waits until the call is cancelled (prints 'CANCELLED <n>') or
                    a 'release' line arrives on stdin;
  attempt <= fail:  fails with status `code` (default 14, UNAVAILABLE), with trailing metadata
                    grpc-retry-pushback-ms: `pushback` if given;
  else:             answers 'ok <n>'.
Unary: /retry.Retry/Call. Client streaming: /retry.Retry/Collect takes the directives from its first message
and answers 'ok <n> <messages received>' once the stream ends. Bidirectional: /retry.Retry/Bidi takes the
directives from its first message, then echoes every message after it.
"""
import sys
import threading
from concurrent import futures

import grpc

released = threading.Event()
lock = threading.Lock()
stalled = []  # the events of stalled attempts, set when stdin says 'release'
codes = {code.value[0]: code for code in grpc.StatusCode}


def directives(request):
    values = {}
    for word in request.decode().split():
        key, _, value = word.partition("=")
        values[key] = value
    return values


def attempt(values, context):
    """Runs one attempt's directives: returns None to go on, or aborts the call."""
    metadata = dict(context.invocation_metadata())
    previous = metadata.get("grpc-previous-rpc-attempts")
    n = 1 + int(previous or "0")
    print(f"ATTEMPT {n} PREVIOUS {previous or '-'}", flush=True)
    if n <= int(values.get("stall", "0")):
        done = threading.Event()

        def ended():
            if not released.is_set():
                print(f"CANCELLED {n}", flush=True)
            done.set()

        with lock:
            stalled.append(done)
            if released.is_set():
                done.set()
        context.add_callback(ended)
        print(f"STALLED {n}", flush=True)
        done.wait(60)  # a failure bound: the test cancels or releases long before
        if not released.is_set():
            return n
    if n <= int(values.get("fail", "0")):
        if "pushback" in values:
            context.set_trailing_metadata((("grpc-retry-pushback-ms", values["pushback"]),))
        context.abort(codes[int(values.get("code", "14"))], f"attempt {n} fails")
    return n


def call(request, context):
    n = attempt(directives(request), context)
    return f"ok {n}".encode()


def collect(requests, context):
    first = next(requests, None)
    if first is None:
        return b"empty"
    n = attempt(directives(first), context)
    count = 1 + sum(1 for _ in requests)
    return f"ok {n} {count}".encode()


def bidi(requests, context):
    first = next(requests, None)
    if first is None:
        return
    n = attempt(directives(first), context)
    yield f"ok {n}".encode()
    for message in requests:
        yield message


ident = lambda b: b
handlers = {
    "Call": grpc.unary_unary_rpc_method_handler(call, ident, ident),
    "Collect": grpc.stream_unary_rpc_method_handler(collect, ident, ident),
    "Bidi": grpc.stream_stream_rpc_method_handler(bidi, ident, ident),
}
server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("retry.Retry", handlers),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"PORT {port}", flush=True)
for line in sys.stdin:  # until the test closes stdin
    if line.strip() == "release":
        with lock:
            released.set()
            for event in stalled:
                event.set()
server.stop(0)
