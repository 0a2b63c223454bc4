import Foundation

/// Where outputs may go, and how a set of them is published.
public enum OutputTarget {
  /// What a path must be to be written.
  public enum Wanted: Sendable {
    /// An output directory.
    case directory
    /// An output file (absent, or a regular file that is replaced).
    case regularFile
    /// A symlink at an output path must point at a regular file or directory.
    case regularTarget
    /// A final name a build's output set is published under.
    case replaceable
  }

  /// Refuses an existing `path` that is not a regular file (or, with `directory`, not a directory):
  /// writing "over" /dev/null or a FIFO would replace it with a regular file, or block.
  public static func check(_ path: String, directory: Bool = false) throws(BuildFailure) {
    var st = stat()
    guard lstat(path, &st) == 0 else { return }  // absent: it will be created
    let type = st.st_mode & S_IFMT
    if type == S_IFLNK {
      // A symlink at the output is replaced by the rename, as with any tool writing a new file;
      // but one pointing at a device is refused as the device would be.
      var target = stat()
      if stat(path, &target) == 0, (target.st_mode & S_IFMT) != S_IFREG,
        (target.st_mode & S_IFMT) != S_IFDIR
      {
        throw .outputOccupied(path: path, kind: kind(target.st_mode), wanted: .regularTarget)
      }
      return
    }
    if directory {
      guard type == S_IFDIR else {
        throw .outputOccupied(path: path, kind: kind(st.st_mode), wanted: .directory)
      }
    } else if type != S_IFREG {
      throw .outputOccupied(path: path, kind: kind(st.st_mode), wanted: .regularFile)
    }
  }

  public static func kind(_ mode: mode_t) -> String {
    switch mode & S_IFMT {
    case S_IFIFO: return "a FIFO"
    case S_IFSOCK: return "a socket"
    case S_IFCHR: return "a character device"
    case S_IFBLK: return "a block device"
    case S_IFDIR: return "a directory"
    case S_IFLNK: return "a symlink"
    case S_IFREG: return "a regular file"
    default: return "a special file"
    }
  }

  /// Whether process `pid` is alive (a stale temporary name carries the pid of its writer).
  static func alive(_ pid: Int32) -> Bool {
    pid > 0 && (kill(pid, 0) == 0 || errno == EPERM)
  }

  /// Removes `.NAME.tmp-PID` files next to `path` left by a rosepack that died (SIGKILL, power loss).
  public static func removeStaleTemporaries(of path: String) {
    let url = URL(fileURLWithPath: path)
    let dir = url.deletingLastPathComponent().path
    let prefix = "." + url.lastPathComponent + ".tmp-"
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
    for name in names where name.hasPrefix(prefix) {
      guard let pid = Int32(name.dropFirst(prefix.count)), !alive(pid) else { continue }
      unlink(dir + "/" + name)
    }
  }
}

/// An exclusive `flock` on an output directory, held for a whole build: two builds into one
/// directory run one after the other instead of interleaving their outputs.
final class DirectoryLock {
  private let fd: Int32

  init(_ directory: String, waiting: (String) -> Void) throws(BuildFailure) {
    fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else {
      throw .io(path: directory, operation: "opening the output directory", errno: errno)
    }
    if flock(fd, LOCK_EX | LOCK_NB) != 0 {
      guard errno == EWOULDBLOCK else {
        let e = errno
        close(fd)
        throw .io(path: directory, operation: "locking", errno: e)
      }
      waiting("\(directory): another rosepack build is writing here; waiting for it to finish")
      while flock(fd, LOCK_EX) != 0 {
        guard errno == EINTR else {
          let e = errno
          close(fd)
          throw .io(path: directory, operation: "locking", errno: e)
        }
      }
    }
  }

  deinit { close(fd) }  // releases the lock
}

/// Publishes a build's outputs as a set: every final name is checked before the first rename, and
/// if a rename still fails, the ones already done are undone (the previous files, kept as hard
/// links in the staging directory, are put back). Runs under `Interrupts.committing`, so a
/// signal waits until the set is published or rolled back. With the directory lock held, nobody
/// else publishes into the directory meanwhile.
enum OutputSet {
  static func publish(files: [String], from staging: String, to directory: String) throws {
    for file in files {
      var st = stat()
      if lstat(directory + "/" + file, &st) == 0, (st.st_mode & S_IFMT) != S_IFREG,
        (st.st_mode & S_IFMT) != S_IFLNK
      {
        throw BuildFailure.outputOccupied(
          path: directory + "/" + file, kind: OutputTarget.kind(st.st_mode), wanted: .replaceable)
      }
    }
    try Interrupts.shared.committing {
      // Keep the previous version of each output (a hard link) until the whole set is in place.
      var previous: [String: String] = [:]
      for file in files {
        let backup = staging + "/.previous-" + file
        if link(directory + "/" + file, backup) == 0 { previous[file] = backup }
      }
      var done: [String] = []
      for file in files {
        if rename(staging + "/" + file, directory + "/" + file) != 0 {
          let e = errno
          for undone in done.reversed() {
            if let backup = previous[undone] {
              rename(backup, directory + "/" + undone)
            } else {
              unlink(directory + "/" + undone)
            }
          }
          // The previous outputs are back in place: the set is as it was before the build.
          throw BuildFailure.io(path: directory + "/" + file, operation: "rename", errno: e)
        }
        done.append(file)
      }
    }
  }
}
