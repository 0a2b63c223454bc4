import Foundation
import Testing

@testable import RoseFS

/// A write that fails (a full disk: /dev/full answers every write with ENOSPC) must surface as
/// an error naming the output and the reason, every time it is asked again, and never leave the
/// packer's staging buffer in a state where the next block overruns it (issue 11, item 5).
@Suite struct WriteFailureTests {
  @Test func aFullDiskIsAnErrorEveryTimeAndNeverATrap() throws {
    let fd = open("/dev/full", O_RDWR)
    guard fd >= 0 else {
      print("skipped: /dev/full is not available here")
      return
    }
    defer { close(fd) }
    let builder: ImageBuilder
    do {
      builder = try ImageBuilder(
        image: ImageFile(fd: fd, path: "out.img"), options: BuildOptions(sourceDateEpoch: 0))
    } catch {
      #expect("\(error)".contains("out.img"), "\(error)")
      return
    }
    let data = builder.data
    var block = [UInt8](repeating: 0, count: RoseLayout.blockSize)
    var failures = 0
    // 4 MiB per file: more than the staging buffer, so each file forces flushes.
    for file in 0..<4 {
      do {
        try data.beginFile(ino: UInt32(100 + file), size: 4 << 20)
        for i in 0..<1024 {
          block[0] = UInt8(truncatingIfNeeded: i | 1)
          try data.write(block, at: UInt64(i) * UInt64(RoseLayout.blockSize))
        }
        _ = try data.finishFile()
      } catch {
        failures += 1
        let text = "\(error)"
        #expect(text.contains("out.img") && text.contains("No space left on device"), "\(text)")
        // The cleanup a caller does after a failure must not trap either.
        _ = try? data.finishFile()
      }
    }
    #expect(failures == 4)
  }
}
