import ArgumentParser
import Foundation
import RoseHeat

/// The stream through the RoseFS engine (`VolumeOperations`), every block write counted in the device
/// layer. Needs the read-write engine (RoseEngine, FileBlockDevice) on main.
struct RoseFSRun: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rosefs",
    abstract: "Run the stream through the RoseFS engine on an image, counting writes per block.")
  @Argument var stream: String
  @Option(help: "A fresh RoseFS image (rosepack convert EMPTY_DIR --size 64M).") var image: String
  @Option var seed: UInt64 = 1
  @Option(name: .shortAndLong) var output: String

  func run() throws {
    throw ValidationError(
      "the RoseFS read-write engine is not in this build yet (RoseEngine lands from the engine branch)"
    )
  }
}
