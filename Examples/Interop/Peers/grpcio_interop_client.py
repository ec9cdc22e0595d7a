"""The interop test cases on grpcio (the gRPC C-core), for running against Courier's interop-server.

Usage: python3 grpcio_interop_client.py --server_port N [--server_host H] [--test_case NAME|all]
         [--use_tls true --ca_file F --server_host_override NAME]
         [--soak_iterations N --soak_max_failures N --soak_per_iteration_max_acceptable_latency_ms N
          --soak_overall_timeout_seconds N --soak_min_time_ms_between_rpcs N --soak_request_size N
          --soak_response_size N]   (for rpc_soak and channel_soak, which 'all' leaves out)
Prints one line per case and 'N passed, N failed'; exits non-zero on any failure.
"""
import argparse
import queue
import sys
import time

import grpc

from grpc_testing_stubs import load

empty_pb2, messages_pb2, test_pb2_grpc = load()
Payload = messages_pb2.Payload
SPECIAL = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"


def expect_code(code, fn, message=None):
    try:
        fn()
    except grpc.RpcError as error:
        assert error.code() == code, f"expected {code}, got {error.code()}: {error.details()}"
        if message is not None:
            assert error.details() == message, f"message {error.details()!r}"
        return
    raise AssertionError(f"expected {code}, the call succeeded")


def empty_unary(stub, channel):
    assert stub.EmptyCall(empty_pb2.Empty(), timeout=30) == empty_pb2.Empty()


def large_unary(stub, channel):
    response = stub.UnaryCall(messages_pb2.SimpleRequest(response_size=314159, payload=Payload(body=b"\0" * 271828)), timeout=30)
    assert len(response.payload.body) == 314159


def client_streaming(stub, channel):
    sizes = [27182, 8, 1828, 45904]
    requests = (messages_pb2.StreamingInputCallRequest(payload=Payload(body=b"\0" * s)) for s in sizes)
    assert stub.StreamingInputCall(requests, timeout=30).aggregated_payload_size == 74922


def server_streaming(stub, channel):
    sizes = [31415, 9, 2653, 58979]
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes])
    assert [len(r.payload.body) for r in stub.StreamingOutputCall(request, timeout=30)] == sizes


def _bidi_requests(q):
    while True:
        item = q.get()
        if item is None:
            return
        yield item


def ping_pong(stub, channel):
    request_sizes = [27182, 8, 1828, 45904]
    response_sizes = [31415, 9, 2653, 58979]
    q = queue.Queue()
    responses = stub.FullDuplexCall(_bidi_requests(q), timeout=30)
    for request_size, response_size in zip(request_sizes, response_sizes):
        q.put(messages_pb2.StreamingOutputCallRequest(
            response_parameters=[messages_pb2.ResponseParameters(size=response_size)],
            payload=Payload(body=b"\0" * request_size)))
        assert len(next(responses).payload.body) == response_size
    q.put(None)
    assert next(responses, None) is None


def empty_stream(stub, channel):
    assert list(stub.FullDuplexCall(iter([]), timeout=30)) == []


def custom_metadata(stub, channel):
    metadata = (("x-grpc-test-echo-initial", "test_initial_metadata_value"),
                ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab"))
    request = messages_pb2.SimpleRequest(response_size=314159, payload=Payload(body=b"\0" * 271828))
    _, call = stub.UnaryCall.with_call(request, metadata=metadata, timeout=30)
    assert dict(call.initial_metadata())["x-grpc-test-echo-initial"] == "test_initial_metadata_value"
    assert dict(call.trailing_metadata())["x-grpc-test-echo-trailing-bin"] == b"\xab\xab\xab"
    duplex = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)], payload=Payload(body=b"\0" * 271828))]),
        metadata=metadata, timeout=30)
    for _ in duplex:
        pass
    assert dict(duplex.initial_metadata())["x-grpc-test-echo-initial"] == "test_initial_metadata_value"
    assert dict(duplex.trailing_metadata())["x-grpc-test-echo-trailing-bin"] == b"\xab\xab\xab"


def status_code_and_message(stub, channel):
    status = messages_pb2.EchoStatus(code=2, message="test status message")
    expect_code(grpc.StatusCode.UNKNOWN, lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=30),
                "test status message")
    expect_code(grpc.StatusCode.UNKNOWN,
                lambda: list(stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(response_status=status)]), timeout=30)),
                "test status message")


def special_status_message(stub, channel):
    status = messages_pb2.EchoStatus(code=2, message=SPECIAL)
    expect_code(grpc.StatusCode.UNKNOWN, lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=30), SPECIAL)


def unimplemented_method(stub, channel):
    expect_code(grpc.StatusCode.UNIMPLEMENTED, lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=30))


def unimplemented_service(stub, channel):
    call = channel.unary_unary("/grpc.testing.UnimplementedService/UnimplementedCall",
                               request_serializer=empty_pb2.Empty.SerializeToString,
                               response_deserializer=empty_pb2.Empty.FromString)
    expect_code(grpc.StatusCode.UNIMPLEMENTED, lambda: call(empty_pb2.Empty(), timeout=30))


def cancel_after_begin(stub, channel):
    q = queue.Queue()
    future = stub.StreamingInputCall.future(_bidi_requests(q), timeout=30)
    future.cancel()
    q.put(None)
    assert future.cancelled()
    assert future.code() == grpc.StatusCode.CANCELLED, future.code()


def cancel_after_first_response(stub, channel):
    q = queue.Queue()
    responses = stub.FullDuplexCall(_bidi_requests(q), timeout=30)
    q.put(messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=31415)], payload=Payload(body=b"\0" * 27182)))
    assert len(next(responses).payload.body) == 31415
    responses.cancel()
    q.put(None)
    expect_code(grpc.StatusCode.CANCELLED, lambda: next(responses))


def timeout_on_sleeping_server(stub, channel):
    q = queue.Queue()
    responses = stub.FullDuplexCall(_bidi_requests(q), timeout=0.001)
    q.put(messages_pb2.StreamingOutputCallRequest(payload=Payload(body=b"\0" * 27182)))
    expect_code(grpc.StatusCode.DEADLINE_EXCEEDED, lambda: list(responses))
    q.put(None)


def _bool(value):
    return messages_pb2.BoolValue(value=value)


def client_compressed_unary(stub, channel):
    def request(expect):
        return messages_pb2.SimpleRequest(expect_compressed=_bool(expect), response_size=314159,
                                          payload=Payload(body=b"\0" * 271828))
    # The feature probe: an uncompressed request that expects compression must be rejected.
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: stub.UnaryCall(request(True), timeout=30))
    assert len(stub.UnaryCall(request(True), compression=grpc.Compression.Gzip, timeout=30).payload.body) == 314159
    assert len(stub.UnaryCall(request(False), timeout=30).payload.body) == 314159


def client_compressed_streaming(stub, channel):
    def request(expect, size):
        return messages_pb2.StreamingInputCallRequest(expect_compressed=_bool(expect), payload=Payload(body=b"\0" * size))
    expect_code(grpc.StatusCode.INVALID_ARGUMENT, lambda: stub.StreamingInputCall(iter([request(True, 27182)]), timeout=30))
    # grpcio's Python API can't send one message of a compressed call uncompressed, so the second
    # message (expect_compressed=false) goes out compressed too; a server that checks per call accepts it.
    response = stub.StreamingInputCall(iter([request(True, 27182), request(False, 45904)]),
                                       compression=grpc.Compression.Gzip, timeout=30)
    assert response.aggregated_payload_size == 73086, response.aggregated_payload_size


def server_compressed_unary(stub, channel):
    # grpcio can't show whether a response arrived compressed; this checks the server copes and the sizes.
    for compressed in (True, False):
        response = stub.UnaryCall(messages_pb2.SimpleRequest(response_compressed=_bool(compressed), response_size=314159,
                                                             payload=Payload(body=b"\0" * 271828)), timeout=30)
        assert len(response.payload.body) == 314159


def server_compressed_streaming(stub, channel):
    request = messages_pb2.StreamingOutputCallRequest(response_parameters=[
        messages_pb2.ResponseParameters(compressed=_bool(True), size=31415),
        messages_pb2.ResponseParameters(compressed=_bool(False), size=92653)])
    assert [len(r.payload.body) for r in stub.StreamingOutputCall(request, timeout=30)] == [31415, 92653]


CASES = [empty_unary, large_unary, client_streaming, server_streaming, ping_pong, empty_stream, custom_metadata,
         status_code_and_message, special_status_message, unimplemented_method, unimplemented_service,
         cancel_after_begin, cancel_after_first_response, timeout_on_sleeping_server,
         client_compressed_unary, server_compressed_unary, client_compressed_streaming, server_compressed_streaming]

def _soak(stub, make_channel):
    """rpc_soak (make_channel None: every RPC on the stub's channel) or channel_soak (a channel each)."""
    a = args
    start = time.monotonic()
    deadline = start + a.soak_overall_timeout_seconds
    request = messages_pb2.SimpleRequest(response_size=a.soak_response_size, payload=Payload(body=b"\0" * a.soak_request_size))
    failures, done, latencies = 0, 0, []
    for iteration in range(a.soak_iterations):
        began = time.monotonic()
        if began >= deadline:
            break
        error = None
        try:
            if make_channel is None:
                response = stub.UnaryCall(request, timeout=deadline - began)
            else:
                with make_channel() as channel:
                    response = test_pb2_grpc.TestServiceStub(channel).UnaryCall(request, timeout=deadline - began)
            if len(response.payload.body) != a.soak_response_size:
                error = f"payload of {len(response.payload.body)} bytes"
        except grpc.RpcError as rpc_error:
            error = f"{rpc_error.code()}: {rpc_error.details()}"
        latency_ms = (time.monotonic() - began) * 1000
        done += 1
        latencies.append(latency_ms)
        if error is None and latency_ms > a.soak_per_iteration_max_acceptable_latency_ms:
            error = f"took {latency_ms:.1f} ms"
        if error is not None:
            failures += 1
            print(f"  iteration {iteration}: {error}")
        wait = began + a.soak_min_time_ms_between_rpcs / 1000 - time.monotonic()
        if wait > 0:
            time.sleep(min(wait, max(0, deadline - time.monotonic())))
    latencies.sort()
    p = (lambda q: latencies[min(len(latencies) - 1, max(0, int(len(latencies) * q + 0.999999) - 1))]) if latencies else (lambda q: 0)
    print(f"  {done}/{a.soak_iterations} iterations, {failures} failed (max {a.soak_max_failures}); "
          f"latency ms p50 {p(0.5):.2f} p90 {p(0.9):.2f} max {p(1):.2f}")
    assert done == a.soak_iterations, f"only {done} of {a.soak_iterations} iterations within the overall timeout"
    assert failures <= a.soak_max_failures, f"{failures} iterations failed"


def rpc_soak(stub, channel):
    _soak(stub, None)


def channel_soak(stub, channel):
    _soak(stub, make_channel)


parser = argparse.ArgumentParser()
parser.add_argument("--server_host", default="127.0.0.1")
parser.add_argument("--server_port", type=int, required=True)
parser.add_argument("--test_case", default="all")
parser.add_argument("--use_tls", default="false")
parser.add_argument("--ca_file")
parser.add_argument("--server_host_override")
parser.add_argument("--soak_iterations", type=int, default=10)
parser.add_argument("--soak_max_failures", type=int, default=0)
parser.add_argument("--soak_per_iteration_max_acceptable_latency_ms", type=int, default=1000)
parser.add_argument("--soak_overall_timeout_seconds", type=int, default=10)
parser.add_argument("--soak_min_time_ms_between_rpcs", type=int, default=0)
parser.add_argument("--soak_request_size", type=int, default=271828)
parser.add_argument("--soak_response_size", type=int, default=314159)
args = parser.parse_args()

SOAK_CASES = [rpc_soak, channel_soak]
selected = CASES if args.test_case == "all" else [c for c in CASES + SOAK_CASES if c.__name__ == args.test_case]
if not selected:
    sys.exit(f"unknown test case {args.test_case}")
failed = 0
target = f"{args.server_host}:{args.server_port}"


def make_channel():
    if args.use_tls == "true":
        roots = open(args.ca_file, "rb").read() if args.ca_file else None
        options = [("grpc.ssl_target_name_override", args.server_host_override)] if args.server_host_override else []
        # A channel of its own (no subchannel sharing), so that channel_soak really reconnects.
        options.append(("grpc.use_local_subchannel_pool", 1))
        return grpc.secure_channel(target, grpc.ssl_channel_credentials(root_certificates=roots), options=options)
    return grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])


channel = make_channel()
with channel:
    grpc.channel_ready_future(channel).result(timeout=10)
    stub = test_pb2_grpc.TestServiceStub(channel)
    for case in selected:
        try:
            case(stub, channel)
            print(f"PASS {case.__name__}")
        except Exception as error:  # noqa: BLE001 - report every failure
            failed += 1
            print(f"FAIL {case.__name__}: {error!r}")
print(f"{len(selected) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
