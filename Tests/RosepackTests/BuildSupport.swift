import Foundation
import Testing

/// Runs the built `rosepack` binary and the independent disk tools the tests check it with.
enum CLI {
  /// The repository root (this file is Tests/RosepackTests/BuildSupport.swift).
  static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().path

  /// The rosepack binary next to the running test bundle, else in a scratch directory of the repo.
  static let binary: String? = {
    var candidates: [String] = []
    let me = URL(fileURLWithPath: CommandLine.arguments[0])
    var dir = me.deletingLastPathComponent()
    for _ in 0..<4 {
      candidates.append(dir.appendingPathComponent("rosepack").path)
      dir = dir.deletingLastPathComponent()
    }
    for scratch in [".build-cli", ".build"] {
      candidates.append(repo + "/" + scratch + "/debug/rosepack")
    }
    return candidates.first { path in
      var isDir: ObjCBool = false
      return FileManager.default.fileExists(atPath: path, isDirectory: &isDir) && !isDir.boolValue
        && FileManager.default.isExecutableFile(atPath: path)
    }
  }()

  struct Result: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
    var stdoutData: Data
  }

  /// Runs `rosepack ARGS` (in the repository root).
  static func rosepack(_ arguments: [String], environment: [String: String] = [:]) throws -> Result
  {
    guard let binary else {
      throw TestFailure(
        "rosepack binary not found next to the test bundle or in \(repo)/.build*/debug; run swift build first"
      )
    }
    return try run(binary, arguments, environment: environment)
  }

  /// Runs a tool found in PATH, /usr/sbin or /sbin.
  static func tool(_ name: String, _ arguments: [String]) throws -> Result {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(
      String.init)
    for dir in path + ["/usr/sbin", "/sbin", "/usr/bin"]
    where FileManager.default.isExecutableFile(atPath: dir + "/" + name) {
      return try run(dir + "/" + name, arguments, environment: [:])
    }
    throw TestFailure(
      "\(name) is not installed (CI installs gdisk fdisk bmap-tools android-sdk-libsparse-utils zstd dosfstools mtools)"
    )
  }

  static func run(_ executable: String, _ arguments: [String], environment: [String: String]) throws
    -> Result
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.currentDirectoryURL = URL(fileURLWithPath: repo)
    var env = ProcessInfo.processInfo.environment
    env["SOURCE_DATE_EPOCH"] = nil
    for (k, v) in environment { env[k] = v }
    process.environment = env
    // Output goes to files: no pipe can fill up and block the child.
    let outPath = NSTemporaryDirectory() + "rosepack-out-\(UInt64.random(in: 0...UInt64.max))"
    let errPath = outPath + ".err"
    _ = FileManager.default.createFile(atPath: outPath, contents: nil)
    _ = FileManager.default.createFile(atPath: errPath, contents: nil)
    defer {
      unlink(outPath)
      unlink(errPath)
    }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    try out.close()
    try err.close()
    let outData = try bytes(outPath)
    let errData = try bytes(errPath)
    return Result(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self), stdoutData: outData)
  }

  /// A fresh temporary directory.
  static func temporaryDirectory(_ name: String) throws -> String {
    let path =
      NSTemporaryDirectory()
      + "rosepack-tests-\(name)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  static func bytes(_ path: String) throws -> Data {
    try Data(contentsOf: URL(fileURLWithPath: path))
  }

  /// `length` bytes of `path` at `offset`.
  static func slice(_ path: String, offset: UInt64, length: Int) throws -> Data {
    let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: offset)
    return try handle.read(upToCount: length) ?? Data()
  }

  static func filesEqual(_ a: String, _ b: String) throws -> Bool {
    try tool("cmp", ["-s", a, b]).status == 0
  }
}

struct TestFailure: Error, Sendable, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// The parts of `rosepack build --json` the tests read.
struct BuildJSON: Decodable, Sendable {
  struct Partition: Decodable, Sendable {
    var index: Int
    var label: String
    var type: String
    var format: String
    var offset: UInt64
    var size: UInt64
    var subvolumes: [String]?
    var privateBytes: [UInt64]?
    var liveBytes: UInt64?
  }
  struct Output: Decodable, Sendable {
    var file: String
    var format: String
    var size: UInt64
    var sha256: String
  }
  var image: String
  var diskSize: UInt64
  var sectorSize: UInt64
  var partitions: [Partition]
  var outputs: [Output]
}
