internal import SwiftProtobufPluginLibrary

/// Turns proto names into Swift names that compile, whatever the proto says.
enum Naming {
    /// Names that can't be a nested type's name, or would shadow what generated code refers to.
    static let reservedTypeNames: Set<String> = [
        "Type", "Protocol", "Self", "Any", "Method", "Client", "ServiceProtocol", "Input", "Output", "Result",
        "Metadata", "CallOptions", "MethodDescriptor", "ServiceDescriptor", "RPCError", "Sendable",
    ]

    /// Function names that would clash with keywords or with what the generated types declare.
    /// Contextual keywords such as `get` or `set` stay usable: they are valid function names.
    static let reservedFunctionNames: Set<String> =
        swiftKeywordsUsedInDeclarations
        .union(swiftKeywordsUsedInStatements)
        .union(swiftKeywordsUsedInExpressionsAndTypes)
        .union(swiftSpecialVariables)
        .union(["registerMethods", "client", "init", "deinit", "subscript", "self", "Self", "Type", "Protocol"])

    /// A valid UpperCamel type name for a proto name.
    static func sanitizeTypeName(_ name: String) -> String {
        var result = NamingUtils.toUpperCamelCase(name)
        if result.isEmpty { result = "_" }
        if let first = result.unicodeScalars.first, ("0"..."9").contains(first) { result = "_" + result }
        if reservedTypeNames.contains(result) || !isValidSwiftIdentifier(result) { result += "_" }
        return result
    }

    /// A valid lowerCamel function name.
    static func sanitizeFunctionName(_ name: String) -> String {
        var result = name.isEmpty ? "_" : name
        if let first = result.unicodeScalars.first, ("0"..."9").contains(first) { result = "_" + result }
        if reservedFunctionNames.contains(result) || !isValidSwiftIdentifier(result) { result += "_" }
        return result
    }

    /// `name`, or `name2`, `name3`, … if taken; records the result as taken.
    static func unique(_ name: String, in taken: inout Set<String>) -> String {
        var candidate = name
        var counter = 2
        while taken.contains(candidate) {
            candidate = "\(name)\(counter)"
            counter += 1
        }
        taken.insert(candidate)
        return candidate
    }
}
