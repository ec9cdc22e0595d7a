"""grpcio and Courier exchanging rich error details (google.rpc.Status in grpc-status-details-bin), with
the ten google.rpc error-detail messages generated here by grpcio-tools from Courier's dev/protos.

    python3 grpcio_rich_status.py server          prints 'PORT n', then serves one call (120 s at
                                                  most): /hello.HelloService/SayHello fails with every detail
    python3 grpcio_rich_status.py client PORT     calls SayHello on a Courier server that fails with every
                                                  detail, checks them, prints 'N passed, M failed'
"""

import os
import subprocess
import sys
import tempfile

import grpc

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
generated = tempfile.mkdtemp(prefix="courier-rich-status-")
import grpc_tools  # noqa: E402

wkt = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", "-I", os.path.join(ROOT, "dev", "protos"), "-I", wkt,
     f"--python_out={generated}", "google/rpc/status.proto", "google/rpc/error_details.proto"],
    check=True,
)
# The generated modules live in a google.rpc package of their own; google.protobuf stays protobuf's.
sys.path.insert(0, generated)
import google  # noqa: E402

google.__path__.append(os.path.join(generated, "google"))
from google.rpc import error_details_pb2, status_pb2  # noqa: E402
from google.protobuf import any_pb2, duration_pb2  # noqa: E402

KEY = "grpc-status-details-bin"


def every_detail():
    d = error_details_pb2
    return [
        d.ErrorInfo(reason="QUOTA", domain="example.com", metadata={"k": "v"}),
        d.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)),
        d.DebugInfo(stack_entries=["a", "b"], detail="debug"),
        d.QuotaFailure(violations=[d.QuotaFailure.Violation(subject="s", description="q")]),
        d.PreconditionFailure(violations=[d.PreconditionFailure.Violation(type="TOS", subject="t", description="p")]),
        d.BadRequest(field_violations=[d.BadRequest.FieldViolation(field="name", description="empty")]),
        d.RequestInfo(request_id="r-1", serving_data="sd"),
        d.ResourceInfo(resource_type="book", resource_name="b1", owner="o", description="gone"),
        d.Help(links=[d.Help.Link(description="docs", url="https://example.com/help")]),
        d.LocalizedMessage(locale="en-US", message="Try later."),
    ]


def status_bytes():
    packed = []
    for detail in every_detail():
        a = any_pb2.Any()
        a.Pack(detail)
        packed.append(a)
    return status_pb2.Status(code=grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], message="rich", details=packed)


def serve():
    from concurrent import futures

    import threading

    served = threading.Event()

    def fail(request, context):
        served.set()
        context.set_trailing_metadata([(KEY, status_bytes().SerializeToString())])
        context.set_code(grpc.StatusCode.RESOURCE_EXHAUSTED)
        context.set_details("rich")
        return b""

    handler = grpc.method_handlers_generic_handler(
        "hello.HelloService", {"SayHello": grpc.unary_unary_rpc_method_handler(fail)}
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers([handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    served.wait(timeout=120)  # one call, then stop (the test may also end it with SIGTERM)
    server.stop(grace=1).wait()


def client(port):
    passed = failed = 0

    def check(name, condition, detail=""):
        nonlocal passed, failed
        if condition:
            passed += 1
            print(f"PASS {name}")
        else:
            failed += 1
            print(f"FAIL {name} {detail}")

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        call = channel.unary_unary("/hello.HelloService/SayHello")
        try:
            call(b"", timeout=10)
            check("the call fails", False, "it succeeded")
        except grpc.RpcError as error:
            check("code", error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, str(error.code()))
            check("message", error.details() == "rich", error.details())
            values = [v for k, v in error.trailing_metadata() if k == KEY]
            check("one grpc-status-details-bin", len(values) == 1, repr(error.trailing_metadata()))
            if values:
                status = status_pb2.Status.FromString(values[0])
                check("status code", status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0])
                expected = every_detail()
                check("ten details", len(status.details) == len(expected), str(len(status.details)))
                for packed, want in zip(status.details, expected):
                    got = type(want)()
                    ok = packed.Unpack(got)
                    check(f"{want.DESCRIPTOR.name}", ok and got == want, f"{packed.type_url}: {got}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    else:
        client(int(sys.argv[2]))
