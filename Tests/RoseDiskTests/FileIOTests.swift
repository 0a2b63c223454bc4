import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

/// FileIO on swift-system: every failure is `DiskError.io` with the path and errno kept.
@Suite struct FileIOTests {
  @Test func openOfAMissingFileKeepsENOENT() {
    #expect(throws: DiskError.io(path: "/nonexistent/x", operation: "open", code: ENOENT)) {
      _ = try FileIO.open("/nonexistent/x", flags: O_RDONLY)
    }
  }

  @Test func writeToAReadOnlyDescriptorKeepsEBADF() throws {
    let dir = try TempDir(prefix: "fileio")
    let path = dir.file("f")
    FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))
    let fd = try FileIO.open(path, flags: O_RDONLY)
    defer { close(fd) }
    #expect(throws: DiskError.io(path: path, operation: "write at offset 0", code: EBADF)) {
      try FileIO.write(fd, [9], at: 0, path: path)
    }
  }

  @Test func shortFilesReadWhatIsThereAndRoundTrip() throws {
    let dir = try TempDir(prefix: "fileio")
    let path = dir.file("f")
    let fd = try FileIO.open(path, flags: O_RDWR | O_CREAT | O_TRUNC)
    defer { close(fd) }
    let bytes = (0..<10_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    try FileIO.write(fd, bytes, at: 100, path: path)
    #expect(try FileIO.size(fd, path: path) == 10_100)
    #expect(try FileIO.size(path: path) == 10_100)
    var back = [UInt8](repeating: 0xFF, count: 20_000)
    let n = try back.withUnsafeMutableBytes { try FileIO.read(fd, into: $0, at: 100, path: path) }
    #expect(n == 10_000)
    #expect(Array(back[0..<n]) == bytes)
    try FileIO.truncate(fd, size: 50, path: path)
    #expect(try FileIO.size(path: path) == 50)
  }

  @Test func anOffsetPast2To63IsEFBIGNotATrap() throws {
    let dir = try TempDir(prefix: "fileio")
    let path = dir.file("f")
    let fd = try FileIO.open(path, flags: O_RDWR | O_CREAT | O_TRUNC)
    defer { close(fd) }
    #expect(
      throws: DiskError.io(path: path, operation: "write at byte \(UInt64.max - 1)", code: EFBIG)
    ) {
      try FileIO.write(fd, [1, 2, 3], at: UInt64.max - 1, path: path)
    }
    #expect(
      throws: DiskError.io(
        path: path, operation: "truncate at byte \(UInt64(1) << 63)", code: EFBIG)
    ) {
      try FileIO.truncate(fd, size: 1 << 63, path: path)
    }
  }
}
