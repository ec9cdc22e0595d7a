"""grpcio-reflection's client against a Courier server: over grpc.reflection.v1alpha (the client's own
stub) and grpc.reflection.v1 (the same messages on the v1 path), it lists the services, resolves a
service, its methods and their message types through a descriptor pool (file containing symbol, file by
name, imports), calls SayHello with a message built from the reflected descriptors alone, as grpcurl
does, and checks that unknown names come back as NOT_FOUND in the stream, which goes on.

    python3 grpcio_reflection_client.py PORT

Prints one line per check and ends with 'N passed, M failed'; exits non-zero on a failure.
"""

import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor_pb2 import FileDescriptorProto
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

PATHS = {
    "v1alpha": "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "v1": "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
}
TIMEOUT = 10
passed = 0
failed = 0


def check(name, condition, detail=""):
    global passed, failed
    if condition:
        passed += 1
        print(f"PASS {name}")
    else:
        failed += 1
        print(f"FAIL {name} {detail}")


class Stub:
    """A ServerReflection stub for either version's path (the messages are the same on the wire)."""

    def __init__(self, channel, path):
        self.ServerReflectionInfo = channel.stream_stream(
            path,
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )


def database(channel, version):
    db = ProtoReflectionDescriptorDatabase(channel)
    db._stub = Stub(channel, PATHS[version])
    return db


def run(channel, version):
    db = database(channel, version)
    services = db.get_services()
    for name in [
        "hello.HelloService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    ]:
        check(f"{version} list_services has {name}", name in services, repr(services))

    pool = descriptor_pool.DescriptorPool(db)
    service = pool.FindServiceByName("hello.HelloService")
    methods = sorted(m.name for m in service.methods)
    check(f"{version} service methods", methods == ["BidiHello", "LotsOfGreetings", "LotsOfReplies", "SayHello"],
          repr(methods))
    method = service.methods_by_name["SayHello"]
    check(f"{version} method input", method.input_type.full_name == "hello.HelloRequest")
    check(f"{version} file by name", db.FindFileByName("hello.proto").name == "hello.proto")
    health = pool.FindServiceByName("grpc.health.v1.Health")
    check(f"{version} health's Check", "Check" in health.methods_by_name)
    serving = pool.FindEnumTypeByName("grpc.health.v1.HealthCheckResponse.ServingStatus")
    check(f"{version} nested enum", "SERVING" in serving.values_by_name)

    # A call built from reflected descriptors only, as grpcurl makes it.
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    say_hello = channel.unary_unary(
        "/hello.HelloService/SayHello",
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    request = request_class()
    request.greeting = "reflection"
    reply = say_hello(request, timeout=TIMEOUT)
    check(f"{version} dynamic call", "reflection" in str(reply), str(reply))

    for lookup, argument in [
        (db.FindFileByName, "missing.proto"),
        (db.FindFileContainingSymbol, "no.such.Symbol"),
        (db.FindAllExtensionNumbers, "no.such.Message"),
    ]:
        try:
            lookup(argument)
            check(f"{version} {lookup.__name__}({argument}) is NOT_FOUND", False, "no error")
        except KeyError:
            check(f"{version} {lookup.__name__}({argument}) is NOT_FOUND", True)
    check(f"{version} no extensions of HelloRequest", list(db.FindAllExtensionNumbers("hello.HelloRequest")) == [])

    # One stream, several requests: errors come back in the stream, which goes on.
    requests = [
        reflection_pb2.ServerReflectionRequest(file_by_filename="missing.proto"),
        reflection_pb2.ServerReflectionRequest(host="example"),  # no kind: INVALID_ARGUMENT
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="hello.HelloService.SayHello"),
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(
            file_containing_extension=reflection_pb2.ExtensionRequest(
                containing_type="hello.HelloRequest", extension_number=100
            )
        ),
    ]
    responses = list(Stub(channel, PATHS[version]).ServerReflectionInfo(iter(requests), timeout=TIMEOUT))
    kinds = [r.WhichOneof("message_response") for r in responses]
    check(f"{version} one stream answers each request in order",
          kinds == ["error_response", "error_response", "file_descriptor_response", "list_services_response",
                    "error_response"],
          repr(kinds))
    if len(responses) == 5:
        check(f"{version} NOT_FOUND code", responses[0].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0])
        check(f"{version} INVALID_ARGUMENT code",
              responses[1].error_response.error_code == grpc.StatusCode.INVALID_ARGUMENT.value[0])
        check(f"{version} original request echoed", responses[2].original_request == requests[2])
        check(f"{version} host echoed", responses[1].valid_host == "example")
        check(f"{version} unknown extension is NOT_FOUND",
              responses[4].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0])
        names = [FileDescriptorProto.FromString(b).name for b in responses[2].file_descriptor_response.file_descriptor_proto]
        check(f"{version} file containing a method", names == ["hello.proto"], repr(names))


def main():
    port = int(sys.argv[1])
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=TIMEOUT)
        for version in ["v1alpha", "v1"]:
            try:
                run(channel, version)
            except Exception as error:  # a failure of the whole run is one failed check, with its reason
                check(f"{version} run", False, repr(error))
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
