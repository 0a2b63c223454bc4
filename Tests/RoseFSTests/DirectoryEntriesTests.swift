import Testing

@testable import RoseFS

/// `DirectoryEntries` against a `[Name: Inode]` model: random insertion orders (sorted, reversed,
/// shuffled), sizes on both sides of the linear-search limit, replacements and removals. Iteration
/// must be in `Name.<` order whether or not `sort()` ran.
@Suite struct DirectoryEntriesTests {
  static func names(_ n: Int, seed: UInt64) -> [Name] {
    var rng = SplitMix(state: seed)
    var out: [Name] = []
    var seen = Set<Name>()
    while out.count < n {
      // Short (inline) and long (array) names, with high bytes so byte order is not ASCII order.
      let len = Int(rng.next() % 24) + 1
      let bytes = (0..<len).map { _ in UInt8(rng.next() % 254) + 1 }.map { $0 == 47 ? 0xF0 : $0 }
      let name = Name(bytes)
      if seen.insert(name).inserted { out.append(name) }
    }
    return out
  }

  @Test(arguments: [0, 1, 5, 16, 17, 300, 3000])
  func matchesADictionary(count: Int) {
    let t = Timestamp(seconds: 0)
    for order in 0..<3 {
      var list = Self.names(count, seed: UInt64(count * 7 + order))
      switch order {
      case 0: list.sort(by: <)
      case 1: list.sort(by: >)
      default: break
      }
      var entries = DirectoryEntries()
      var model: [Name: Inode] = [:]
      for name in list {
        let inode = Inode(kind: .regular, permissions: 0o644, mtime: t)
        entries[name] = inode
        model[name] = inode
      }
      // Replace every third, remove every fifth, then look everything up again.
      for (i, name) in list.enumerated() {
        if i % 3 == 0 {
          let inode = Inode(kind: .fifo, permissions: 0o600, mtime: t)
          entries[name] = inode
          model[name] = inode
        }
        if i % 5 == 0 {
          entries[name] = nil
          model[name] = nil
        }
      }
      #expect(entries.count == model.count)
      for name in list { #expect(entries[name] === model[name], "\(name) order \(order)") }
      #expect(entries[Name("not-there")] == nil)
      let expected = model.keys.sorted(by: <)
      #expect(entries.keys == expected, "order \(order), \(count) names")
      #expect(
        entries.values.map(ObjectIdentifier.init) == expected.map { ObjectIdentifier(model[$0]!) })
      entries.sort()
      #expect(entries.isSorted)
      #expect(entries.keys == expected)
      for name in list { #expect(entries[name] === model[name]) }
    }
  }

  /// Names arriving in order never leave the sorted form (no index, no sort at the end).
  @Test func inOrderAppendsStaySorted() {
    var entries = DirectoryEntries()
    let t = Timestamp(seconds: 0)
    for i in 0..<2000 {
      entries[Name("f" + String(i).leftPadded(to: 6))] = Inode(
        kind: .regular, permissions: 0o644, mtime: t)
    }
    #expect(entries.isSorted)
    entries[Name("a")] = Inode(kind: .regular, permissions: 0o644, mtime: t)
    #expect(!entries.isSorted)
    #expect(entries.keys.first == Name("a"))
  }
}
