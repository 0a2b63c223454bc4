import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

/// Sizes and offsets at or above 2^63 come from recipes (DiskSize=, Offset=) and damaged tables:
/// `off_t(value)` traps there, so every conversion is checked and reported as EFBIG.
@Suite struct HugeSizeTests {
  @Test(arguments: [UInt64(1) << 63, UInt64.max - 511, UInt64.max])
  func truncateToAHugeSizeIsAnError(_ size: UInt64) throws {
    let dir = try TempDir()
    let path = dir.path + "/huge.img"
    #expect {
      _ = try AtomicOutputFile(path: path, size: size)
    } throws: { error in
      guard case DiskError.io(let p, _, let code) = error else { return false }
      return code == EFBIG && p.contains("huge.img")
    }
    let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
    #expect(left.isEmpty, "the temporary file is removed: \(left)")
  }

  @Test func readAndWriteAtHugeOffsetsAreErrors() throws {
    let dir = try TempDir()
    let path = dir.path + "/f"
    let fd = try FileIO.open(path, flags: O_RDWR | O_CREAT)
    defer { close(fd) }
    for offset in [UInt64(1) << 63, UInt64.max - 2] {
      #expect(throws: DiskError.self) {
        try FileIO.write(fd, [1, 2, 3, 4], at: offset, path: path)
      }
      var buffer = [UInt8](repeating: 0, count: 8)
      #expect(throws: DiskError.self) {
        try buffer.withUnsafeMutableBytes {
          _ = try FileIO.read(fd, into: $0, at: offset, path: path)
        }
      }
    }
  }
}
