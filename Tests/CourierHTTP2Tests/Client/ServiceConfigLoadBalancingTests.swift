import Courier
import Testing

@testable import CourierHTTP2

@Suite("A service config's loadBalancingConfig chooses the transport's policy")
struct ServiceConfigLoadBalancingTests {
    @Test("The first supported policy wins; unknown names are skipped")
    func firstSupported() {
        let chosen = LoadBalancingPolicy.choosing(from: [
            LoadBalancingConfig(policyName: "weighted_round_robin"), .roundRobin, .pickFirst(),
        ])
        #expect(chosen == .roundRobin)
        #expect(
            LoadBalancingPolicy.choosing(from: [.pickFirst(shuffleAddressList: true)])
                == .pickFirst(shuffleAddressList: true)
        )
        #expect(LoadBalancingPolicy.choosing(from: [LoadBalancingConfig(policyName: "grpclb")]) == nil)
        #expect(LoadBalancingPolicy.choosing(from: []) == nil)
    }

    @Test("CourierClient hands a JSON service config's policy to the HTTP/2 transport")
    func fromClient() throws {
        let transport = try HTTP2ClientTransport(target: "ipv4:127.0.0.1:1,127.0.0.2:1")
        #expect(transport.effectiveLoadBalancing == .pickFirst())
        let config = try ServiceConfig(json: #"{"loadBalancingConfig": [{"round_robin": {}}]}"#)
        var configuration = CourierClient.Configuration()
        configuration.serviceConfig = config
        _ = try CourierClient(transport: transport, configuration: configuration)
        #expect(transport.effectiveLoadBalancing == .roundRobin)
    }
}
