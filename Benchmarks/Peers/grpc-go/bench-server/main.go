// grpc.testing.BenchmarkService on grpc-go, as grpc-go's own benchmark server implements it: the peer for
// Courier's bench-server. Built offline from Debian packages by Benchmarks/Peers/grpc-go/build.sh, which
// generates the stubs (protoc-gen-go 1.3.5 with plugins=grpc) from Debian's grpc-proto.
//
//	GOMAXPROCS=1 taskset -c 0 ./bench-server -port 50051
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"

	"google.golang.org/grpc"

	pb "courierbench/grpc_testing"
)

type server struct{}

func response(request *pb.SimpleRequest) *pb.SimpleResponse {
	return &pb.SimpleResponse{Payload: &pb.Payload{Body: make([]byte, request.GetResponseSize())}}
}

func (server) UnaryCall(_ context.Context, request *pb.SimpleRequest) (*pb.SimpleResponse, error) {
	return response(request), nil
}

func (server) StreamingCall(stream pb.BenchmarkService_StreamingCallServer) error {
	for {
		request, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(response(request)); err != nil {
			return err
		}
	}
}

func (server) StreamingFromClient(stream pb.BenchmarkService_StreamingFromClientServer) error {
	last := &pb.SimpleRequest{}
	for {
		request, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(response(last))
		}
		if err != nil {
			return err
		}
		last = request
	}
}

func (server) StreamingFromServer(request *pb.SimpleRequest, stream pb.BenchmarkService_StreamingFromServerServer) error {
	reply := response(request)
	for {
		if err := stream.Send(reply); err != nil {
			return err
		}
	}
}

func (s server) StreamingBothWays(stream pb.BenchmarkService_StreamingBothWaysServer) error {
	return s.StreamingCall(stream)
}

func main() {
	port := flag.Int("port", 0, "port (default $PORT, else 50051)")
	flag.Parse()
	if *port == 0 {
		*port = 50051
		if value := os.Getenv("PORT"); value != "" {
			fmt.Sscan(value, port)
		}
	}
	listener, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		log.Fatal(err)
	}
	s := grpc.NewServer()
	pb.RegisterBenchmarkServiceServer(s, server{})
	fmt.Printf("grpc-go bench-server listening on %v\n", listener.Addr())
	log.Fatal(s.Serve(listener))
}
