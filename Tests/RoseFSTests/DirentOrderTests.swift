import Testing

@testable import RoseFS

/// `sortedDirents` sorts words (hash << 32 | position in name order): the result must still be
/// FORMAT.md's key order, hash first and names in byte order among equal hashes, whatever order the
/// caller gives the names in.
@Suite struct DirentOrderTests {
  static let seed: [UInt8] = (0..<16).map { UInt8($0 * 13 + 3) }

  /// The order written out in full: (hash, name bytes), seq counting up among equal hashes.
  static func reference(_ names: [[UInt8]]) -> [(key: UInt64, name: [UInt8])] {
    let sorted = names.map { (nameHash($0, seed: seed), $0) }.sorted {
      $0.0 != $1.0 ? $0.0 < $1.0 : $0.1.lexicographicallyPrecedes($1.1)
    }
    var out: [(key: UInt64, name: [UInt8])] = []
    var seq: UInt64 = 0
    for (i, (h, name)) in sorted.enumerated() {
      seq = i > 0 && sorted[i - 1].0 == h ? seq + 1 : 0
      out.append((UInt64(h) << 32 | seq, name))
    }
    return out
  }

  static func check(_ names: [[UInt8]]) -> Bool {
    let got = sortedDirents(
      names.enumerated().map { (Name($0.element), UInt32($0.offset + 1), 1) }, seed: seed)
    let want = reference(names)
    return got.map(\.key) == want.map(\.key) && got.map(\.name) == want.map(\.name)
  }

  @Test func keyOrderForNamesInAnyOrder() {
    var rng = SystemRandomNumberGenerator()
    var names = (0..<2000).map { i -> [UInt8] in
      Array("name-\(i)".utf8) + (0..<(i % 23)).map { _ in UInt8.random(in: 1...255, using: &rng) }
    }
    #expect(Self.check(names.sorted { $0.lexicographicallyPrecedes($1) }), "in name order")
    names.shuffle()
    #expect(Self.check(names), "shuffled")
    #expect(Self.check([]), "empty")
  }

  /// Two names with the same hash get seq 0 and 1 in byte order, given either way. CRC-32C is
  /// linear, so names that differ in a few bytes never collide; the pair is found by search among
  /// 8-byte names from a fixed generator (the same pair every run; about 9 collisions are expected).
  @Test func equalHashesAreNumberedInByteOrder() throws {
    let hasher = NameHasher(seed: Self.seed)
    var seen: [UInt32: UInt64] = [:]
    seen.reserveCapacity(300_000)
    var pair: ([UInt8], [UInt8])?
    var x: UInt64 = 0x9E37_79B9_7F4A_7C15
    func bytes(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
    for _ in 0..<300_000 {
      x = x &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      let v = x | 0x0101_0101_0101_0101  // no NUL byte
      let h = withUnsafeBytes(of: v) { hasher.hash($0) }
      if let other = seen[h], other != v {
        pair = (bytes(other), bytes(v))
        break
      }
      seen[h] = v
    }
    let (a, b) = try #require(pair, "no two of 300,000 names share a hash under this seed")
    #expect(nameHash(a, seed: Self.seed) == nameHash(b, seed: Self.seed))
    #expect(Self.check([a, b, Array("x".utf8)]))
    #expect(Self.check([b, Array("x".utf8), a]))
    let got = sortedDirents([(Name(b), 2, 1), (Name(a), 1, 1)], seed: Self.seed)
    #expect(got.map { $0.key & 0xFFFF_FFFF } == [0, 1])
    #expect(got.map(\.name) == [a, b].sorted { $0.lexicographicallyPrecedes($1) })
  }
}
