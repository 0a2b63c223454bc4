import Dispatch
import Foundation
import RoseDisk
import RoseMkfs

/// SIGINT, SIGTERM and SIGHUP: what rosepack leaves behind when it is interrupted. Every temporary
/// file and staging directory is registered here while it exists; on a signal the registered paths
/// are removed, child processes are killed, and rosepack exits with 128 + the signal number
/// (130, 143, 129), as a shell reports a process killed by that signal.
///
/// The handler runs on a dispatch queue, not in signal context, so it may take locks and remove
/// directory trees. A commit (the renames that publish outputs) holds the same lock, so a signal
/// never lands in the middle of one: it waits until the set is published or not at all.
public final class Interrupts: @unchecked Sendable {
  public static let shared = Interrupts()

  private let lock = NSLock()  // guards `paths`
  private let commitLock = NSLock()  // held by a commit, and by the handler until the exit
  private var paths: [String: Bool] = [:]  // path: is a directory
  private var sources: [DispatchSourceSignal] = []
  private let queue = DispatchQueue(label: "rosepack.signals")

  /// Installs the handlers (once, at start).
  public func install() {
    for sig in [SIGINT, SIGTERM, SIGHUP] {
      signal(sig, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: sig, queue: queue)
      source.setEventHandler { [self] in self.interrupted(by: sig) }
      source.resume()
      sources.append(source)
    }
  }

  /// Removes `path` (a file, or with `directory` a whole tree) if rosepack is interrupted.
  public func register(_ path: String, directory: Bool = false) {
    lock.lock()
    paths[path] = directory
    lock.unlock()
  }

  public func unregister(_ path: String) {
    lock.lock()
    paths[path] = nil
    lock.unlock()
  }

  /// Runs `body` (renames publishing outputs) with signals held off until it returns.
  public func committing<T>(_ body: () throws -> T) rethrows -> T {
    commitLock.lock()
    defer { commitLock.unlock() }
    return try body()
  }

  private func interrupted(by sig: Int32) {
    commitLock.lock()  // never released: the process ends here
    lock.lock()
    ChildProcesses.killAll()
    for (path, isDirectory) in paths {
      if isDirectory {
        try? FileManager.default.removeItem(atPath: path)
      } else {
        unlink(path)
      }
    }
    let name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGHUP"
    let message = "rosepack: interrupted by \(name); temporary files removed\n"
    _ = message.withCString { write(2, $0, strlen($0)) }
    _exit(128 + sig)
  }
}
