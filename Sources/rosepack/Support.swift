import Foundation
import RoseBuild
import RoseDisk
import RoseFS
import RoseSizes

/// Errors of the command-line layer itself (bad arguments the parser cannot see).
enum CLIError: Error, CustomStringConvertible {
  case usage(String)
  case failed(String)
  var description: String {
    switch self {
    case .usage(let m), .failed(let m): return m
    }
  }
}

/// Progress on stderr when it is a terminal; silent in pipes and CI logs.
final class Progress: BuildProgress {
  let enabled: Bool
  private var lastDraw = Date.distantPast
  private var drawn = false

  init(quiet: Bool = false) { enabled = !quiet && isatty(2) == 1 }

  func update(_ text: @autoclosure () -> String) {
    guard enabled else { return }
    let now = Date()
    guard now.timeIntervalSince(lastDraw) > 0.1 else { return }
    lastDraw = now
    var line = text()
    if line.count > 100 { line = String(line.prefix(100)) }
    FileHandle.standardError.write(Data(("\r\u{1B}[K" + line).utf8))
    drawn = true
  }

  func done() {
    guard enabled, drawn else { return }
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    drawn = false
  }
}

/// A size option ("64M", "1048576", "auto"): recipe keys' grammar (`RoseRecipe.parseSize`); nil is
/// auto.
func parseSize(_ text: String, option: String) throws -> UInt64? {
  let t = text.trimmingCharacters(in: .whitespaces)
  if t == "auto" { return nil }
  guard let n = RoseSizes.parseSize(t) else {
    let hint = sizeHint(for: t)
    throw CLIError.usage(
      "\(option) '\(text)' is not a size: \(hint == sizeSyntaxHint ? "use " + hint + ", or auto" : hint)"
    )
  }
  return n
}

/// SOURCE_DATE_EPOCH from the environment (reproducible builds convention), 0 if unset.
func sourceDateEpoch() throws -> Int64 {
  guard let s = ProcessInfo.processInfo.environment["SOURCE_DATE_EPOCH"], !s.isEmpty else {
    return 0
  }
  guard let v = Int64(s) else {
    throw CLIError.usage("SOURCE_DATE_EPOCH='\(s)' is not a whole number of seconds since 1970")
  }
  return v
}

/// An output written under a temporary name in the same directory and renamed at the end, so that a
/// failed run never leaves a half-written file under the final name: RoseDisk's `AtomicOutputFile`,
/// plus what the CLI adds (the `-o` checks, the pid in the temporary name so that a later run removes
/// what a killed one left, and removal on SIGINT/SIGTERM).
final class PendingOutput {
  let finalPath: String
  private let file: AtomicOutputFile
  private var committed = false
  var tempPath: String { file.temporaryPath }
  var fd: Int32 { file.fd }

  init(path: String) throws {
    finalPath = path
    let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
    var isDir: ObjCBool = false
    guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
      throw CLIError.usage("\(path): the directory \(dir) does not exist")
    }
    try checkOutputPath(path, option: "-o")
    OutputTarget.removeStaleTemporaries(of: path)
    let suffix = "\(getpid())"
    let temp = AtomicOutputFile.temporaryPath(of: path, suffix: suffix)
    Interrupts.shared.register(temp)
    // Our own pid's name: no live process owns it (one of ours that died left it behind).
    unlink(temp)
    do {
      file = try AtomicOutputFile(path: path, temporarySuffix: suffix)
    } catch {
      Interrupts.shared.unregister(temp)
      throw error
    }
  }

  /// No fsync: like mkfs tools, durability is left to the caller (`sync`); what matters here is that
  /// the final name never holds a partial image, which the rename guarantees.
  func commit() throws {
    try Interrupts.shared.committing {
      try file.commit()
      committed = true
      Interrupts.shared.unregister(tempPath)
    }
  }

  deinit {
    if !committed { file.discard() }
    Interrupts.shared.unregister(tempPath)
  }
}

func printJSON<T: Encodable>(_ value: T) throws {
  let enc = JSONEncoder()
  enc.outputFormatting = [.prettyPrinted, .sortedKeys]
  let data = try enc.encode(value)
  FileHandle.standardOutput.write(data)
  FileHandle.standardOutput.write(Data("\n".utf8))
}

/// `OutputTarget.check`, worded for the command-line option that named the path.
func checkOutputPath(_ path: String, option: String, directory: Bool = false) throws {
  do {
    try OutputTarget.check(path, directory: directory)
  } catch {
    throw CLIError.usage("\(option) \(error)")
  }
}
