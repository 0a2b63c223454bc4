import Foundation
import RoseDisk
import RoseFS

/// The external tools running right now, so that an interrupted rosepack can kill them instead of
/// leaving them behind (a child does not die with its parent on its own).
public enum ChildProcesses {
  nonisolated(unsafe) private static var running: Set<Int32> = []
  private static let lock = NSLock()

  static func add(_ pid: Int32) {
    lock.lock()
    running.insert(pid)
    lock.unlock()
  }

  static func remove(_ pid: Int32) {
    lock.lock()
    running.remove(pid)
    lock.unlock()
  }

  /// SIGKILL to every running child (called on SIGINT/SIGTERM/SIGHUP, just before exiting).
  public static func killAll() {
    lock.lock()
    for pid in running { kill(pid, SIGKILL) }
    lock.unlock()
  }
}

/// Finds and runs external tools.
public enum Tool {
  public static func find(_ name: String, package: String) throws -> String {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    let directories =
      path.split(separator: ":").map(String.init) + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
    for directory in directories where !directory.isEmpty {
      let candidate = directory + "/" + name
      if access(candidate, X_OK) == 0 { return candidate }
    }
    throw DiskError.toolMissing(tool: name, debianPackage: package)
  }

  /// Runs a tool and returns its combined stdout and stderr (its last 4 KiB: the tail carries the
  /// error, and a chatty tool must not make the message huge).
  public static func run(
    _ tool: String, _ arguments: [String], environment: [String: String],
    allowFailure: Bool = false,
    standardInput: String? = nil
  )
    throws -> String
  {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: tool)
    process.arguments = arguments
    process.environment = environment
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    if let standardInput {
      guard let handle = FileHandle(forReadingAtPath: standardInput) else {
        throw DiskError.toolFailed(
          tool: tool, arguments: arguments, status: -1, output: "cannot open \(standardInput)")
      }
      process.standardInput = handle
    } else {
      process.standardInput = FileHandle.nullDevice
    }
    // Foundation's waitUntilExit (swift-corelibs) polls its run loop every 50 ms, which cost
    // about 40 ms per tool run (4 s for an ESP of 100 directories, one mcopy each); the
    // termination handler fires as soon as the child is reaped.
    let exited = DispatchSemaphore(value: 0)
    process.terminationHandler = { _ in exited.signal() }
    do { try process.run() } catch {
      throw DiskError.toolFailed(tool: tool, arguments: arguments, status: -1, output: "\(error)")
    }
    ChildProcesses.add(process.processIdentifier)
    defer { ChildProcesses.remove(process.processIdentifier) }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    exited.wait()
    var output = String(decoding: data.suffix(4096), as: UTF8.self)
    if process.terminationStatus != 0 && !allowFailure {
      if output.allSatisfy(\.isWhitespace) {
        output = "(it printed nothing)"
      }
      let status =
        process.terminationReason == .uncaughtSignal
        ? -process.terminationStatus : process.terminationStatus
      throw DiskError.toolFailed(
        tool: tool, arguments: arguments, status: status, output: output)
    }
    return output
  }
}

/// Content a filesystem cannot hold, named by the entry: the caller adds the recipe line.
public struct UnsupportedContent: Error, CustomStringConvertible, Sendable {
  public var format: String
  /// The image path of the entry ("/usr/bin/su"), or "/" for the root.
  public var entry: String
  /// What would be lost ("a hard link", "an xattr security.selinux").
  public var what: String
  public var hint: String

  public var description: String {
    "\(entry): Format=\(format) cannot hold \(what); \(hint)"
  }
}

/// Creates (or truncates) a file of `size` bytes, all a hole.
func createSparseFile(_ path: String, size: UInt64) throws {
  let fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
  guard fd >= 0 else {
    throw DiskError.invalidInput(
      path: path, reason: "cannot create: \(String(cString: strerror(errno)))")
  }
  defer { close(fd) }
  guard let length = off_t(exactly: size), ftruncate(fd, length) == 0 else {
    unlink(path)
    throw DiskError.invalidInput(
      path: path, reason: "cannot size to \(size) bytes: \(String(cString: strerror(errno)))")
  }
}

/// Size of a file in bytes (0 when it does not exist).
func fileSize(_ path: String) -> UInt64 {
  var st = stat()
  guard stat(path, &st) == 0 else { return 0 }
  return UInt64(max(st.st_size, 0))
}

/// The partition is smaller than the content needs.
public struct ContentDoesNotFit: Error, CustomStringConvertible, Sendable {
  public var needed: UInt64
  public var available: UInt64
  public var description: String {
    "the content needs \(needed) bytes, the partition has \(available)"
  }
}

/// Every entry below `dir` (not `dir` itself), parents first, names in byte order.
func walkTree(_ dir: Inode, prefix: [UInt8] = [], _ body: ([UInt8], Inode) throws -> Void) rethrows
{
  for name in dir.children.keys.sorted() {
    guard let child = dir.children[name] else { continue }
    let path = prefix.isEmpty ? name.bytes : prefix + [UInt8(ascii: "/")] + name.bytes
    try body(path, child)
    if child.kind == .directory { try walkTree(child, prefix: path, body) }
  }
}
