// A grpc-go server with only the standard health service, listening on $PORT: the cold-start reference
// (Benchmarks/ColdStart). Built offline from Debian's golang-google-grpc-dev in GOPATH mode:
//
//	GOPATH=/usr/share/gocode GO111MODULE=off go build -o health-server .
package main

import (
	"log"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

func main() {
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	listener, err := net.Listen("tcp", ":"+port)
	if err != nil {
		log.Fatal(err)
	}
	server := grpc.NewServer()
	healthpb.RegisterHealthServer(server, health.NewServer())
	log.Fatal(server.Serve(listener))
}
