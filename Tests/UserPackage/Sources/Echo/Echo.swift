import Courier

/// The Echo service, on code the command plugin wrote into Generated/ (public, as its config asks).
public struct EchoService: Echo_V1_EchoService.ServiceProtocol {
    /// Creates the service.
    public init() {}

    public func echo(
        request: ServerRequest<Echo_V1_EchoRequest>,
        context: ServerContext
    ) async throws
        -> ServerResponse<Echo_V1_EchoResponse>
    {
        ServerResponse(message: .with { $0.text = request.message.text })
    }
}
