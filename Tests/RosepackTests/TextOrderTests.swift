import Foundation
import Testing

/// `scripts/rosepack-text-order.txt`, the functions the release link places first in the text
/// (docs/MEMORY.md, "Release flags and text order"), stays in the form `scripts/text-order.sh`
/// writes it: one mangled name a line, sorted, no repeats. A merge that interleaves two versions
/// of the list, or a hand edit, breaks that form; lld would still accept it, so nothing else fails.
@Suite("Release text order list")
struct TextOrderTests {
  @Test func listIsSortedUniqueNamesAndPackageLinksIt() throws {
    let path = CLI.repo + "/scripts/rosepack-text-order.txt"
    let text = try String(contentsOfFile: path, encoding: .utf8)
    #expect(text.hasSuffix("\n"), "\(path) must end with a newline")
    let names = text.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
    #expect(names.count > 1000, "\(path) has \(names.count) names; re-run scripts/text-order.sh")
    let malformed = names.enumerated().filter { _, name in
      name.isEmpty || name.contains(where: { $0 == " " || $0 == "\t" })
    }
    #expect(
      malformed.isEmpty,
      "\(path): lines \(malformed.prefix(5).map { $0.offset + 1 }) are not one name each")
    let unordered = zip(names, names.dropFirst()).enumerated().filter { _, pair in
      !(Array(pair.0.utf8).lexicographicallyPrecedes(Array(pair.1.utf8)))
    }
    #expect(
      unordered.isEmpty,
      "\(path): lines \(unordered.prefix(5).map { $0.offset + 2 }) are out of order or repeated")
    let manifest = try String(contentsOfFile: CLI.repo + "/Package.swift", encoding: .utf8)
    #expect(manifest.contains("--symbol-ordering-file="))
    #expect(manifest.contains("/scripts/rosepack-text-order.txt"))
  }
}
