/// SplitMix64: small, seedable, the same on every machine.
public struct FuzzRandom {
  var state: UInt64
  public init(seed: UInt64) { state = seed }
  public mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
  mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
  mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

  /// A value chosen to hit edges: limits, powers of two, small counts, or anything.
  mutating func interesting(width: Int) -> UInt64 {
    let bits = UInt64(width * 8)
    let mask: UInt64 = bits == 64 ? .max : (1 << bits) - 1
    let pick: [UInt64] = [
      0, 1, 2, 3, 7, 8, 15, 16, 255, 256, 4095, 4096, 4097, 65535, 65536, 0x7F, 0x80,
      0x7FFF, 0x8000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 1 << 32, 1 << 40, 1 << 62, 1 << 63,
      .max, .max - 1, 0x305, 0x0505,
    ]
    let v = chance(70) ? pick[below(pick.count)] : next()
    return v & mask
  }
}
