// The protobuf codec on arbitrary bytes: grpc.testing messages (nested messages, bytes, enums) and
// google.rpc.Status (rich error details). What parses serializes, and parses back to the same value.
// Input: [message type][bytes...].
internal import Courier
internal import CourierProtobuf
internal import GRPCTestingProtos
internal import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProtobuf(_ data: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    guard count > 0 else { return 0 }
    let buffer = MessageBuffer(UnsafeBufferPointer(start: data + 1, count: count - 1))
    switch data[0] % 4 {
    case 0: roundTrip(Grpc_Testing_SimpleRequest.self, buffer)
    case 1: roundTrip(Grpc_Testing_StreamingOutputCallRequest.self, buffer)
    case 2: roundTrip(Grpc_Testing_SimpleResponse.self, buffer)
    default: roundTrip(Google_Rpc_Status.self, buffer)
    }
    return 0
}

private func roundTrip<M: SwiftProtobuf.Message>(_ type: M.Type, _ buffer: MessageBuffer) {
    let codec = ProtobufCodec<M>()
    let message: M
    do {
        message = try codec.deserialize(buffer)
    } catch let error as RPCError {
        if error.code != .internal { fatalError("status \(error.code) for a bad message") }
        return
    } catch {
        fatalError("the codec threw a non-RPCError: \(error)")
    }
    do {
        let again = try codec.deserialize(try codec.serialize(message))
        // A NaN double (grpc.testing's ORCA utilizations) is never equal to itself, so equal values are
        // the same bytes, encoded deterministically (map entries in key order), when `==` can't tell.
        if !again.isEqualTo(message: message), try deterministic(again) != deterministic(message) {
            fatalError("serialize then deserialize changed a \(M.protoMessageName)")
        }
    } catch {
        fatalError("a parsed \(M.protoMessageName) does not round-trip: \(error)")
    }
}

private func deterministic(_ message: some SwiftProtobuf.Message) throws -> [UInt8] {
    var options = BinaryEncodingOptions()
    options.useDeterministicOrdering = true
    return try message.serializedBytes(options: options)
}
