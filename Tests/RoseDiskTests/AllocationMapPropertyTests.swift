import RoseTestSupport
import Testing

@testable import RoseDisk

@Suite struct AllocationMapPropertyTests {
  /// Random inserts agree with a byte bitmap, and the invariants (sorted, disjoint,
  /// non-touching) hold after every insert.
  @Test func randomInsertsMatchBitmap() {
    var rng = SplitMix(seed: 42)
    for round in 0..<50 {
      var map = AllocationMap()
      var bitmap = [Bool](repeating: false, count: 4096)
      var all: [AllocationMap.Extent] = []
      for _ in 0..<(1 + round) {
        let offset = rng.next() % 4000
        let length = rng.next() % 96
        map.insert(offset: offset, length: length)
        all.append(.init(offset: offset, length: length))
        for i in offset..<(offset + length) { bitmap[Int(i)] = true }
        for (a, b) in zip(map.extents, map.extents.dropFirst()) { #expect(a.end < b.offset) }
      }
      for i in 0..<4096 where map.contains(UInt64(i)) != bitmap[i] {
        Issue.record("byte \(i) differs in round \(round)")
        break
      }
      #expect(map.usedBytes == UInt64(bitmap.filter { $0 }.count))
      #expect(AllocationMap(unsorted: all.shuffled(using: &rng)) == map)
      let holes = map.holes(imageSize: 4096).reduce(UInt64(0)) { $0 + $1.length }
      #expect(holes + map.usedBytes == 4096)
    }
  }
}

struct SplitMix: RandomNumberGenerator {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
