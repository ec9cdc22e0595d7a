// grpc.testing.BenchmarkService on grpc C++ (Debian's libgrpc++-dev), with the callback API: the peer for
// Courier's bench-server. Every response carries response_size zero bytes, as grpc's own benchmark server.
// Built by build.sh; run with one completion thread pinned to one core:
//
//   taskset -c 0 ./grpc-cpp-bench-server --port 50051
#include <grpcpp/grpcpp.h>
#include <grpcpp/resource_quota.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "grpc/testing/benchmark_service.grpc.pb.h"

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using grpc::Status;
using grpc::testing::BenchmarkService;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;

static void Fill(const SimpleRequest& request, SimpleResponse* response) {
    response->mutable_payload()->mutable_body()->assign(std::max(0, request.response_size()), '\0');
}

class Service final : public BenchmarkService::CallbackService {
    ServerUnaryReactor* UnaryCall(CallbackServerContext* context, const SimpleRequest* request,
                                  SimpleResponse* response) override {
        Fill(*request, response);
        auto* reactor = context->DefaultReactor();
        reactor->Finish(Status::OK);
        return reactor;
    }

    // Ping-pong: one response per request until the client half-closes.
    grpc::ServerBidiReactor<SimpleRequest, SimpleResponse>* StreamingCall(CallbackServerContext*) override {
        class Reactor : public grpc::ServerBidiReactor<SimpleRequest, SimpleResponse> {
        public:
            Reactor() { StartRead(&request_); }
            void OnReadDone(bool ok) override {
                if (!ok) { Finish(Status::OK); return; }
                Fill(request_, &response_);
                StartWrite(&response_);
            }
            void OnWriteDone(bool ok) override {
                if (!ok) { Finish(Status::CANCELLED); return; }
                StartRead(&request_);
            }
            void OnDone() override { delete this; }
        private:
            SimpleRequest request_;
            SimpleResponse response_;
        };
        return new Reactor();
    }

    // Sends responses until the client cancels.
    grpc::ServerWriteReactor<SimpleResponse>* StreamingFromServer(CallbackServerContext*,
                                                                   const SimpleRequest* request) override {
        class Reactor : public grpc::ServerWriteReactor<SimpleResponse> {
        public:
            explicit Reactor(const SimpleRequest& request) {
                Fill(request, &response_);
                StartWrite(&response_);
            }
            void OnWriteDone(bool ok) override {
                if (!ok) { Finish(Status::CANCELLED); return; }
                StartWrite(&response_);
            }
            void OnDone() override { delete this; }
        private:
            SimpleResponse response_;
        };
        return new Reactor(*request);
    }
};

int main(int argc, char** argv) {
    int port = 50051;
    if (const char* env = std::getenv("PORT")) port = std::atoi(env);
    for (int i = 1; i + 1 < argc; i++) {
        if (std::strcmp(argv[i], "--port") == 0) port = std::atoi(argv[i + 1]);
    }
    Service service;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("0.0.0.0:" + std::to_string(port), grpc::InsecureServerCredentials());
    builder.RegisterService(&service);
    auto server = builder.BuildAndStart();
    std::printf("grpc C++ bench-server listening on %d\n", port);
    std::fflush(stdout);
    server->Wait();
}
