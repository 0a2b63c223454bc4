/// Damages a recipe: hostile values, cut and spliced lines, NUL and CR bytes.
public enum RecipeMutator {
  public static func mutate(_ pristine: [UInt8], _ rng: inout FuzzRandom) -> ([UInt8], String) {
    var lines = pristine.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map
    { Array($0) }
    var notes: [String] = []
    let hostile = [
      "18446744073709551104", "9223372036854775808", "-1", "0", "1T", "99999999999999999999G",
      "", "=", "\0", "a\0b", "%", "%{", "{{", "{{#x}}", "[Image]", "yes", "/", "../..", "\r",
      String(repeating: "x", count: 5000),
    ]
    for _ in 0..<1 + rng.below(3) {
      guard !lines.isEmpty else { break }
      let i = rng.below(lines.count)
      switch rng.below(5) {
      case 0:
        if let eq = lines[i].firstIndex(of: UInt8(ascii: "=")) {
          lines[i] = Array(lines[i][...eq]) + Array(hostile[rng.below(hostile.count)].utf8)
        }
        notes.append("line \(i) value")
      case 1:
        lines.insert(lines[i], at: rng.below(lines.count))
        notes.append("line \(i) duplicated")
      case 2:
        lines[i] = Array(lines[i].prefix(rng.below(lines[i].count + 1)))
        notes.append("line \(i) cut")
      case 3:
        let j = rng.below(lines.count)
        lines[i] = Array(
          lines[i].prefix(rng.below(lines[i].count + 1))
            + lines[j].suffix(rng.below(lines[j].count + 1)))
        notes.append("lines \(i)+\(j) spliced")
      default:
        lines.remove(at: i)
        notes.append("line \(i) removed")
      }
    }
    return (Array(lines.joined(separator: [UInt8(ascii: "\n")])), notes.joined(separator: "; "))
  }
}
