#!/usr/bin/env python3
"""End-to-end test of observed-ping-server against a real OTLP/gRPC receiver.

A small OpenTelemetry collector (grpcio + opentelemetry-proto) records what the server exports. One
Send RPC carries a W3C traceparent; the test checks that a server span with OpenTelemetry's RPC
attributes arrives as that traceparent's child, that gRFC A66 metrics arrive, and that SIGTERM drains
and exits 0. Every wait is bounded.

    python3 otlp_end_to_end.py PATH/TO/observed-ping-server
"""

import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


class Collector(trace_service_pb2_grpc.TraceServiceServicer, metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self):
        self.lock = threading.Lock()
        self.spans = []
        self.metric_names = set()
        self.resources = []

    def Export(self, request, context):  # both services share the method name
        with self.lock:
            if isinstance(request, trace_service_pb2.ExportTraceServiceRequest):
                for resource_spans in request.resource_spans:
                    self.resources.append(resource_spans.resource)
                    for scope in resource_spans.scope_spans:
                        self.spans.extend(scope.spans)
                return trace_service_pb2.ExportTraceServiceResponse()
            for resource_metrics in request.resource_metrics:
                for scope in resource_metrics.scope_metrics:
                    for metric in scope.metrics:
                        self.metric_names.add(metric.name)
            return metrics_service_pb2.ExportMetricsServiceResponse()


def attributes(span):
    values = {}
    for kv in span.attributes:
        value = kv.value
        values[kv.key] = value.string_value if value.HasField("string_value") else value.int_value
    return values


def wait_for(predicate, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def main():
    binary = sys.argv[1]
    collector = Collector()
    receiver = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, receiver)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(collector, receiver)
    collector_port = receiver.add_insecure_port("127.0.0.1:0")
    receiver.start()

    environment = dict(os.environ)
    environment.update(
        {
            "PORT": "0",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
            "OTEL_SERVICE_NAME": "ping-e2e",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
            "PING_DRAIN_SECONDS": "5",
        }
    )
    server = subprocess.Popen(
        [binary], env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = []
    listening = threading.Event()
    port = []

    def read_output():
        for line in server.stdout:
            output.append(line)
            match = re.search(r"address=\S*:(\d+)", line)
            if "listening" in line and match:
                port.append(int(match.group(1)))
                listening.set()

    threading.Thread(target=read_output, daemon=True).start()
    passed, failed = 0, 0

    def check(condition, what):
        nonlocal passed, failed
        if condition:
            passed += 1
            print(f"ok: {what}")
        else:
            failed += 1
            print(f"FAILED: {what}")

    try:
        check(listening.wait(30), "the server listens")
        if not port:
            raise RuntimeError("no port: " + "".join(output))
        channel = grpc.insecure_channel(f"127.0.0.1:{port[0]}")
        send = channel.unary_unary("/ping.PingService/Send")
        # ping.Request { msg = "otel" }: field 1, length-delimited.
        reply = send(
            b"\x0a\x04otel",
            metadata=[("traceparent", f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01")],
            timeout=10,
        )
        check(reply == b"\x0a\x04otel", "Send answers")

        def server_span():
            with collector.lock:
                for span in collector.spans:
                    if span.name == "ping.PingService/Send" and span.kind == trace_pb2.Span.SPAN_KIND_SERVER:
                        return span
            return None

        check(wait_for(lambda: server_span() is not None, 20), "a server span named ping.PingService/Send arrives")
        span = server_span()
        if span is not None:
            values = attributes(span)
            print(f"span: {span.name} kind=SERVER attributes={values}")
            check(span.trace_id.hex() == TRACE_ID, "the span is in the client's trace")
            check(span.parent_span_id.hex() == PARENT_SPAN_ID, "the client's traceparent is the span's parent")
            check(values.get("rpc.system") == "grpc", "rpc.system=grpc")
            check(values.get("rpc.service") == "ping.PingService", "rpc.service")
            check(values.get("rpc.method") == "Send", "rpc.method")
            check(values.get("rpc.grpc.status_code") == 0, "rpc.grpc.status_code=0")
            check(str(values.get("network.peer.address", "")).startswith("127.0.0.1"), "network.peer.address")
        with collector.lock:
            resources = list(collector.resources)
        names = [kv.value.string_value for r in resources for kv in r.attributes if kv.key == "service.name"]
        check("ping-e2e" in names, "OTEL_SERVICE_NAME names the resource")

        wanted = {"grpc.server.call.started", "grpc.server.call.duration",
                  "grpc.server.call.sent_total_compressed_message_size",
                  "grpc.server.call.rcvd_total_compressed_message_size"}
        check(wait_for(lambda: wanted <= collector.metric_names, 20), "gRFC A66 server metrics arrive")
        print(f"metrics: {sorted(collector.metric_names)}")

        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        check(code == 0, f"SIGTERM drains and exits 0 (exit {code})")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        receiver.stop(0)
    if failed:
        print("".join(output))
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
