"""What `grpcurl -plaintext HOST:PORT list` and `describe` do, with grpcio-reflection's client: lists the
services a server reflects (grpc.reflection.v1alpha) and resolves each named service's methods through a
descriptor pool built from the reflected files.

    python3 grpcio_reflection_list.py PORT SERVICE...

Prints 'SERVICE name' per listed service and 'METHOD service/method' per resolved method; exits non-zero
if a named service is not listed or can't be resolved. With REFLECTION_TOKEN set in the environment, every
call carries `authorization: Bearer TOKEN` (grpcurl's `-H`).
"""

import collections
import os
import sys

import grpc
from google.protobuf import descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase


class _Details(
    collections.namedtuple("_Details", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")),
    grpc.ClientCallDetails,
):
    pass


class BearerToken(grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer TOKEN` to every streaming call (reflection's one method is one)."""

    def __init__(self, token):
        self.token = token

    def intercept_stream_stream(self, continuation, details, requests):
        metadata = list(details.metadata or []) + [("authorization", f"Bearer {self.token}")]
        details = _Details(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready, details.compression
        )
        return continuation(details, requests)


def main():
    port, wanted = sys.argv[1], sys.argv[2:]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    token = os.environ.get("REFLECTION_TOKEN")
    if token:
        channel = grpc.intercept_channel(channel, BearerToken(token))
    database = ProtoReflectionDescriptorDatabase(channel)
    services = list(database.get_services())
    for name in services:
        print(f"SERVICE {name}")
    pool = descriptor_pool.DescriptorPool(database)
    status = 0
    for name in wanted:
        if name not in services:
            print(f"MISSING {name}")
            status = 1
            continue
        service = pool.FindServiceByName(name)
        for method in service.methods:
            print(f"METHOD {name}/{method.name} {method.input_type.full_name} -> {method.output_type.full_name}")
    return status


if __name__ == "__main__":
    sys.exit(main())
