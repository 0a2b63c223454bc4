import ArgumentParser
import Foundation
import RoseFS
import RoseHeat

/// The stream through the RoseFS engine (`VolumeOperations`), every block write counted in the device
/// layer; writes the heat log and IMAGE.writes.json (the counts `rosepack map` draws).
struct RoseFSRun: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rosefs",
    abstract: "Run the stream through the RoseFS engine on an image, counting writes per block.")
  @Argument var stream: String
  @Option(help: "A fresh RoseFS image (rosepack convert EMPTY_DIR -o IMAGE --size 64M).") var image:
    String
  @Option var seed: UInt64 = 1
  @Option(name: .shortAndLong) var output: String

  func run() throws {
    let ops = try OpStream.read(path: stream)
    let log = try RoseFSRunner.run(stream: ops, seed: seed, image: image)
    try log.save(to: output)
    struct Counts: Encodable {
      var blockSize: Int
      var writes: [UInt64]
    }
    let enc = JSONEncoder()
    try enc.encode(Counts(blockSize: 4096, writes: log.countsPerBlock)).write(
      to: URL(fileURLWithPath: image + ".writes.json"))
    FileHandle.standardError.write(
      Data(
        "RoseFS: \(log.blocks.count) 4 KiB block writes, device counters \((log.deviceStatBytes ?? 0) / 4096), failures \(log.outcome?.failures ?? [:])\n"
          .utf8))
  }
}
