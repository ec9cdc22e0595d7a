// A unary load generator on grpc C++ (Debian's libgrpc++-dev, callback API): the peer client for
// scenario (f), the Courier client and this one against the same grpc C++ server. Each channel keeps
// `--streams` calls in flight; every completed call starts the next one until the duration is over.
// Prints requests/s, the client's CPU time and requests per client CPU-second as one JSON object.
//
//   taskset -c 1 ./grpc-cpp-bench-client --target 127.0.0.1:50051 --connections 4 --streams 64 \
//       --size 1024 --warmup 1 --duration 5
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "grpc/testing/benchmark_service.grpc.pb.h"

using grpc::testing::BenchmarkService;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using Clock = std::chrono::steady_clock;

static double CpuSeconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec + (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Load {
    SimpleRequest request;
    Clock::time_point measureFrom, stopAt;
    std::atomic<long> completed{0}, failed{0};
    std::atomic<int> running{0};
    std::mutex mutex;
    std::condition_variable done;
};

// One call slot: issues a call, and on completion the next, until the stop time.
class Slot {
public:
    Slot(BenchmarkService::Stub* stub, Load* load) : stub_(stub), load_(load) {}
    void Start() {
        load_->running++;
        Issue();
    }

private:
    void Issue() {
        context_ = std::make_unique<grpc::ClientContext>();
        response_.Clear();
        stub_->async()->UnaryCall(context_.get(), &load_->request, &response_, [this](grpc::Status status) {
            auto now = Clock::now();
            if (!status.ok()) {
                load_->failed++;
            } else if (now >= load_->measureFrom) {
                load_->completed++;
            }
            if (now < load_->stopAt && status.ok()) {
                Issue();
            } else if (--load_->running == 0) {
                std::lock_guard<std::mutex> lock(load_->mutex);
                load_->done.notify_all();
            }
        });
    }

    BenchmarkService::Stub* stub_;
    Load* load_;
    std::unique_ptr<grpc::ClientContext> context_;
    SimpleResponse response_;
};

int main(int argc, char** argv) {
    std::string target = "127.0.0.1:50051";
    int connections = 1, streams = 1, size = 0;
    double warmup = 1, duration = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        const char* value = argv[i + 1];
        if (flag == "--target") target = value;
        else if (flag == "--connections") connections = atoi(value);
        else if (flag == "--streams") streams = atoi(value);
        else if (flag == "--size") size = atoi(value);
        else if (flag == "--warmup") warmup = atof(value);
        else if (flag == "--duration") duration = atof(value);
        else {
            fprintf(stderr, "unknown flag %s\n", flag.c_str());
            return 2;
        }
    }
    Load load;
    load.request.set_response_size(size);
    load.request.mutable_payload()->mutable_body()->assign(size, '\0');
    std::vector<std::unique_ptr<BenchmarkService::Stub>> stubs;
    for (int c = 0; c < connections; c++) {
        grpc::ChannelArguments arguments;
        arguments.SetInt("grpc.channel_id", c);  // distinct arguments: one TCP connection per channel
        arguments.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
        stubs.push_back(BenchmarkService::NewStub(
            grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), arguments)));
    }
    auto start = Clock::now();
    load.measureFrom = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(warmup));
    load.stopAt = load.measureFrom + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(duration));
    std::vector<std::unique_ptr<Slot>> slots;
    for (auto& stub : stubs)
        for (int s = 0; s < streams; s++) slots.push_back(std::make_unique<Slot>(stub.get(), &load));
    double cpuAtStart = 0;
    bool cpuMarked = false;
    for (auto& slot : slots) slot->Start();
    {
        std::unique_lock<std::mutex> lock(load.mutex);
        while (load.running > 0) {
            if (!cpuMarked && Clock::now() >= load.measureFrom) {
                cpuAtStart = CpuSeconds();
                cpuMarked = true;
            }
            load.done.wait_for(lock, std::chrono::milliseconds(5));
        }
    }
    double cpu = CpuSeconds() - cpuAtStart;
    double rate = load.completed / duration;
    printf("{\"client\": \"grpc-c++\", \"requests_per_second\": %.0f, \"client_cpu_seconds\": %.3f, "
           "\"requests_per_client_cpu_second\": %.0f, \"failed\": %ld}\n",
           rate, cpu, cpu > 0 ? load.completed / cpu : 0, load.failed.load());
    return load.failed > 0 ? 1 : 0;
}
