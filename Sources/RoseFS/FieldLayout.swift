/// One field of an on-disk structure, as FORMAT.md's tables name it: the single place that says
/// where a field is and how wide. Encoders and decoders use the offsets; the layout tests check that
/// the fields of every structure tile it exactly (the erofs `BUILD_BUG_ON` idea) and that FORMAT.md's
/// tables say the same.
public struct FieldSpec: Sendable, Equatable, CustomStringConvertible {
  public let name: String
  public let offset: Int
  public let size: Int
  public init(_ name: String, _ offset: Int, _ size: Int) {
    self.name = name
    self.offset = offset
    self.size = size
  }
  public var end: Int { offset + size }
  public var description: String { "\(name)@0x\(String(offset, radix: 16))+\(size)" }
}

/// An on-disk structure of fixed size whose fields are declared once.
public protocol OnDiskLayout {
  /// Bytes of the structure.
  static var size: Int { get }
  /// Every field in offset order, reserved bytes included, so that they cover `0 ..< size`.
  static var fields: [FieldSpec] { get }
}

extension ByteWriter {
  /// Stores `v` at `offset` (from the writer's start), leaving `pos` after it.
  @inline(__always) public mutating func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
    pos = offset
    put(v)
  }
  public mutating func put(bytes: [UInt8], paddedTo n: Int, at offset: Int) {
    pos = offset
    put(bytes: bytes, paddedTo: n)
  }
}
