/// What a client sends on a stream: the request metadata once, first, then messages.
public enum RPCRequestPart: Sendable {
    /// The request metadata (headers); always the first part.
    case metadata(Metadata)
    /// One serialized request message.
    case message(MessageBuffer)
}

/// What a server sends on a stream: optionally metadata, then messages, then exactly one status.
public enum RPCResponsePart: Sendable {
    /// The response metadata (headers); at most once, before any message.
    case metadata(Metadata)
    /// One serialized response message.
    case message(MessageBuffer)
    /// The final status and its trailing metadata; always the last part. A status without a preceding
    /// `metadata` part is a Trailers-Only response.
    case status(Status, Metadata)
}
