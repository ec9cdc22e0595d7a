import Foundation
import Testing

/// The repository's root, from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// A fenced code block of a Markdown file.
struct CodeBlock: CustomTestStringConvertible, Sendable {
    var file: String
    var line: Int
    var language: String
    var text: [String]
    var testDescription: String { "\(file):\(line)" }
}

/// Every ```swift and ```proto block of the DocC articles and the README.
func documentedCode() throws -> [CodeBlock] {
    var files = ["README.md"]
    let enumerator = FileManager.default.enumerator(atPath: repositoryRoot.appendingPathComponent("Sources").path)
    while let path = enumerator?.nextObject() as? String {
        if path.contains(".docc/") && path.hasSuffix(".md") { files.append("Sources/" + path) }
    }
    files += try FileManager.default.contentsOfDirectory(atPath: repositoryRoot.appendingPathComponent("Examples").path)
        .map { "Examples/\($0)/README.md" }
        .filter { FileManager.default.fileExists(atPath: repositoryRoot.appendingPathComponent($0).path) }

    var blocks: [CodeBlock] = []
    for file in files.sorted() {
        let lines = try String(contentsOf: repositoryRoot.appendingPathComponent(file), encoding: .utf8)
            .split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var current: CodeBlock?
        for (index, line) in lines.enumerated() {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if var block = current {
                if trimmed == "```" {
                    blocks.append(block)
                    current = nil
                } else {
                    block.text.append(line)
                    current = block
                }
            } else if trimmed == "```swift" || trimmed == "```proto" {
                current = CodeBlock(file: file, line: index + 1, language: String(trimmed.dropFirst(3)), text: [])
            }
        }
    }
    return blocks
}

/// The files whose contents a block may quote: everything CI compiles (or, for .proto, generates from).
func quotableFiles(language: String) throws -> [String: [String]] {
    let suffix = language == "swift" ? ".swift" : ".proto"
    var contents: [String: [String]] = [:]
    for directory in ["Snippets", "Examples", "Tests", "Sources"] {
        let base = repositoryRoot.appendingPathComponent(directory)
        let enumerator = FileManager.default.enumerator(atPath: base.path)
        while let path = enumerator?.nextObject() as? String {
            guard path.hasSuffix(suffix), !path.contains("/.build/"), !path.hasPrefix(".build") else { continue }
            let text = try String(contentsOf: base.appendingPathComponent(path), encoding: .utf8)
            contents["\(directory)/\(path)"] = normalized(
                text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            )
        }
    }
    return contents
}

/// Lines without surrounding whitespace, blank lines dropped.
func normalized(_ lines: [String]) -> [String] {
    lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// A block in pieces: a `// ...` line stands for code left out.
func fragments(_ block: CodeBlock) -> [[String]] {
    var pieces: [[String]] = [[]]
    for line in normalized(block.text) {
        if line == "// ..." || line == "..." {
            pieces.append([])
        } else {
            pieces[pieces.count - 1].append(line)
        }
    }
    return pieces.filter { !$0.isEmpty }
}

extension Array where Element == String {
    func containsContiguous(_ piece: [String]) -> Bool {
        guard piece.count <= count else { return false }
        return (0...(count - piece.count)).contains { start in
            self[start..<(start + piece.count)].elementsEqual(piece)
        }
    }
}

@Suite("Code in the documentation is code that CI compiles")
struct DocumentationCodeTests {
    static let blocks = (try? documentedCode()) ?? []
    static let swiftFiles = (try? quotableFiles(language: "swift")) ?? [:]
    static let protoFiles = (try? quotableFiles(language: "proto")) ?? [:]

    @Test("There are code blocks to check")
    func found() {
        #expect(Self.blocks.count > 20, "\(Self.blocks.count) blocks")
    }

    /// Each piece of each block (pieces are separated by `// ...`) must appear, line for line, in one file
    /// under Snippets/, Examples/, Tests/ or Sources/ (leading whitespace and blank lines aside).
    @Test("Each block appears in a compiled file", arguments: blocks)
    func blockIsQuoted(_ block: CodeBlock) throws {
        let files = block.language == "swift" ? Self.swiftFiles : Self.protoFiles
        #expect(!files.isEmpty)
        for piece in fragments(block) {
            let found = files.contains { $0.value.containsContiguous(piece) }
            #expect(
                found,
                "\(block.file):\(block.line): not found in any compiled file:\n\(piece.joined(separator: "\n"))"
            )
        }
    }
}
