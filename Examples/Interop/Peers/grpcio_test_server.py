"""grpc.testing.TestService on grpcio (the gRPC C-core), for running Courier's interop client against.

Usage: python3 grpcio_test_server.py [--port N] [--use_tls --tls_cert_file F --tls_key_file F]
(default: a free port)
Prints 'PORT <n>' once listening; serves until stdin closes.
"""
import os
import sys
import time
from concurrent import futures

import grpc

from grpc_testing_stubs import load

empty_pb2, messages_pb2, test_pb2_grpc = load()

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


# What SimpleResponse.server_id says when a request sets fill_server_id: one id per server process, so that
# a client can tell its backends apart (pick_first_unary).
SERVER_ID = f"grpcio-{os.getpid()}"


def echo_metadata(context):
    metadata = dict(context.invocation_metadata())
    if ECHO_INITIAL in metadata:
        context.send_initial_metadata(((ECHO_INITIAL, metadata[ECHO_INITIAL]),))
    if ECHO_TRAILING in metadata:
        context.set_trailing_metadata(((ECHO_TRAILING, metadata[ECHO_TRAILING]),))


def maybe_abort(request, context):
    if request.HasField("response_status") and request.response_status.code != 0:
        context.abort(grpc.StatusCode(_code(request.response_status.code)), request.response_status.message)


def _code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.value
    return grpc.StatusCode.UNKNOWN.value


def payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        echo_metadata(context)
        return empty_pb2.Empty()

    # grpcio's Python servicer can't see whether a request was compressed, so it can't answer the
    # compression cases' feature probe (expect_compressed); clients skip the probe, as the descriptions allow.

    def UnaryCall(self, request, context):
        echo_metadata(context)
        maybe_abort(request, context)
        if request.HasField("response_compressed"):
            context.set_compression(grpc.Compression.Gzip if request.response_compressed.value else grpc.Compression.NoCompression)
        response = messages_pb2.SimpleResponse(payload=payload(request.response_size))
        if request.fill_server_id:
            response.server_id = SERVER_ID
        return response

    def StreamingOutputCall(self, request, context):
        echo_metadata(context)
        if any(p.HasField("compressed") and p.compressed.value for p in request.response_parameters):
            context.set_compression(grpc.Compression.Gzip)
        for parameters in request.response_parameters:
            if parameters.interval_us:
                time.sleep(parameters.interval_us / 1e6)
            if parameters.HasField("compressed") and not parameters.compressed.value:
                context.disable_next_message_compression()
            yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size))

    def StreamingInputCall(self, request_iterator, context):
        echo_metadata(context)
        total = sum(len(request.payload.body) for request in request_iterator)
        return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)

    def FullDuplexCall(self, request_iterator, context):
        echo_metadata(context)
        for request in request_iterator:
            maybe_abort(request, context)
            for parameters in request.response_parameters:
                yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size))

    def HalfDuplexCall(self, request_iterator, context):
        requests = list(request_iterator)
        for request in requests:
            for parameters in request.response_parameters:
                yield messages_pb2.StreamingOutputCallResponse(payload=payload(parameters.size))


port = 0
if "--port" in sys.argv:
    port = int(sys.argv[sys.argv.index("--port") + 1])
server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
if "--use_tls" in sys.argv:
    certificate = open(sys.argv[sys.argv.index("--tls_cert_file") + 1], "rb").read()
    key = open(sys.argv[sys.argv.index("--tls_key_file") + 1], "rb").read()
    bound = server.add_secure_port(f"127.0.0.1:{port}", grpc.ssl_server_credentials([(key, certificate)]))
else:
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
server.start()
print(f"PORT {bound}", flush=True)
sys.stdin.read()
server.stop(0)
