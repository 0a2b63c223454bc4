/// Byte helpers the mutators share.
extension String {
  func leftPadded(_ n: Int) -> String {
    String(repeating: "0", count: max(0, n - count)) + self
  }
}

extension Array where Element == UInt8 {
  func loadLE<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T {
    withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
  }
}
