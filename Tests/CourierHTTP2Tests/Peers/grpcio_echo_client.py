"""A grpcio (gRPC C-core) client that checks a Courier echo server over h2c.

Usage: python3 grpcio_echo_client.py PORT

Methods are called generically with raw bytes, so no generated code is needed. Prints one line per check
and a closing 'N passed, N failed' line; exits non-zero on any failure.
"""
import sys

import grpc

PORT = int(sys.argv[1])
ident = lambda b: b
results = []


def check(name, fn):
    try:
        fn()
        results.append((name, None))
        print(f"PASS {name}")
    except Exception as error:  # noqa: BLE001 - report every failure, keep going
        results.append((name, error))
        print(f"FAIL {name}: {error!r}")


with grpc.insecure_channel(f"127.0.0.1:{PORT}") as channel:
    grpc.channel_ready_future(channel).result(timeout=10)
    get = channel.unary_unary("/echo.Echo/Get", request_serializer=ident, response_deserializer=ident)
    expand = channel.unary_stream("/echo.Echo/Expand", request_serializer=ident, response_deserializer=ident)
    collect = channel.stream_unary("/echo.Echo/Collect", request_serializer=ident, response_deserializer=ident)
    update = channel.stream_stream("/echo.Echo/Update", request_serializer=ident, response_deserializer=ident)
    fail = channel.unary_unary("/echo.Echo/Fail", request_serializer=ident, response_deserializer=ident)
    missing = channel.unary_unary("/echo.Echo/Missing", request_serializer=ident, response_deserializer=ident)

    def unary():
        assert get(b"hello", timeout=10) == b"hello"

    def empty():
        assert get(b"", timeout=10) == b""

    def large():
        payload = bytes(range(256)) * 4096  # 1 MiB
        assert get(payload, timeout=30) == payload

    def metadata():
        response, call = get.with_call(
            b"m",
            timeout=10,
            metadata=(("x-echo-initial", "initial value"), ("x-echo-trailing-bin", b"\xab\xab\xab")),
        )
        assert response == b"m"
        initial = dict(call.initial_metadata())
        trailing = dict(call.trailing_metadata())
        assert initial.get("x-echo-initial") == "initial value", initial
        assert trailing.get("x-echo-trailing-bin") == b"\xab\xab\xab", trailing

    def server_streaming():
        assert list(expand(b"a b c d", timeout=10)) == [b"a", b"b", b"c", b"d"]

    def client_streaming():
        assert collect(iter([b"x", b"y", b"z"]), timeout=10) == b"x y z"

    def bidirectional():
        assert list(update(iter([b"1", b"2", b"3"]), timeout=10)) == [b"1", b"2", b"3"]

    def many_streaming():
        messages = [bytes([i % 256]) * 1000 for i in range(500)]
        assert list(update(iter(messages), timeout=30)) == messages

    def status_and_message():
        try:
            fail(b"", timeout=10)
            raise AssertionError("expected an error")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.code()
            assert error.details() == "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n", repr(error.details())

    def unimplemented():
        try:
            missing(b"", timeout=10)
            raise AssertionError("expected UNIMPLEMENTED")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error.code()

    def deadline():
        slow = channel.unary_unary("/echo.Echo/Slow", request_serializer=ident, response_deserializer=ident)
        try:
            slow(b"", timeout=0.2)
            raise AssertionError("expected DEADLINE_EXCEEDED")
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error.code()

    def compressed():
        payload = b"compress me " * 1000
        for algorithm in (grpc.Compression.Gzip, grpc.Compression.Deflate):
            assert get(payload, timeout=10, compression=algorithm) == payload
            assert list(update(iter([payload, payload]), timeout=10, compression=algorithm)) == [payload, payload]

    def concurrent():
        futures = [get.future(str(i).encode(), timeout=30) for i in range(200)]
        assert [f.result() for f in futures] == [str(i).encode() for i in range(200)]

    for name, fn in [
        ("unary", unary), ("empty", empty), ("large_1MiB", large), ("metadata", metadata),
        ("server_streaming", server_streaming), ("client_streaming", client_streaming),
        ("bidirectional", bidirectional), ("many_streaming", many_streaming),
        ("status_and_message", status_and_message), ("unimplemented", unimplemented),
        ("deadline", deadline), ("compressed", compressed), ("concurrent_200", concurrent),
    ]:
        check(name, fn)

failed = sum(1 for _, error in results if error is not None)
print(f"{len(results) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
