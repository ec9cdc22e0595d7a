"""Generates the grpc.testing Python stubs from Debian's grpc-proto into a temporary directory and makes
them importable as grpc.testing (the name the generated code imports itself by). The directory is removed once
the modules are imported (they stay loaded), so no run leaves one behind."""
import os
import shutil
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTO_ROOT = os.environ.get("GRPC_PROTO_ROOT", "/usr/share/grpc-proto")


def load():
    out = tempfile.mkdtemp(prefix="grpc-testing-stubs-")
    files = ["grpc/testing/test.proto", "grpc/testing/messages.proto", "grpc/testing/empty.proto"]
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    if protoc.main(["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", *files]) != 0:
        sys.exit("could not generate the grpc.testing stubs (is grpc-proto installed?)")
    grpc.__path__.append(os.path.join(out, "grpc"))
    try:
        from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc  # noqa: E402
    finally:
        shutil.rmtree(out, ignore_errors=True)

    return empty_pb2, messages_pb2, test_pb2_grpc
