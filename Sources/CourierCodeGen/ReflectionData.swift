internal import SwiftProtobuf
internal import SwiftProtobufPluginLibrary

/// The descriptors `ReflectionData=true` embeds.
enum ReflectionData {
    /// `file`'s descriptor, then those of every file it imports, directly or not, each once, without
    /// source info (comments and spans only make them bigger).
    static func files(from file: FileDescriptor) -> [Google_Protobuf_FileDescriptorProto] {
        var seen: Set<String> = []
        var result: [Google_Protobuf_FileDescriptorProto] = []
        var pending = [file]
        while let next = pending.first {
            pending.removeFirst()
            guard seen.insert(next.name).inserted else { continue }
            result.append(next.extractProto())
            pending += next.dependencies
        }
        return result
    }

    /// ``files(from:)``, serialized and base64-encoded.
    static func encodedFiles(from file: FileDescriptor) throws(GeneratorError) -> [String] {
        var encoded: [String] = []
        for descriptor in files(from: file) {
            do {
                encoded.append(base64(try descriptor.serializedBytes(partial: true)))
            } catch {
                throw GeneratorError("\(descriptor.name): its descriptor does not serialize: \(error)")
            }
        }
        return encoded
    }

    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Standard base64 with padding (RFC 4648, section 4).
    static func base64(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var index = 0
        while index < bytes.count {
            let count = min(3, bytes.count - index)
            var group = UInt32(bytes[index]) << 16
            if count > 1 { group |= UInt32(bytes[index + 1]) << 8 }
            if count > 2 { group |= UInt32(bytes[index + 2]) }
            for position in 0..<4 {
                if position <= count {
                    out.append(alphabet[Int((group >> (18 - 6 * UInt32(position))) & 0x3F)])
                } else {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
