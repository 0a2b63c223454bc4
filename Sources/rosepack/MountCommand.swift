import ArgumentParser
import Foundation
import RoseBuild
import RoseFS
import RoseMount

struct MountCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "mount",
    abstract: "Mount one subvolume of a RoseFS volume with FUSE (read-write unless --read-only).",
    discussion: """
      Without -f, returns once the mount is ready and serves it in the background. Unmount with \
      `fusermount3 -u MOUNTPOINT`; the serving process then writes its clean checkpoint and exits, \
      releasing its lock on IMAGE (`flock IMAGE true` waits for that).
      """)
  @OptionGroup var volume: VolumeOptions
  @Argument(help: "An existing directory to mount on.") var mountpoint: String
  @Option(help: "Subvolume name (default: the default subvolume).") var subvolume: String?
  @Flag(name: .customLong("read-only"), help: "Mount read-only: nothing is written to IMAGE.")
  var readOnly = false
  @Flag(name: .customShort("f"), help: "Stay in the foreground and print errors to stderr.")
  var foreground = false

  /// Set in the environment of the background server this command spawns of itself.
  static let daemonVariable = "ROSEPACK_MOUNT_DAEMON"
  /// What the background server writes to its stderr pipe once the mount is ready.
  static let readyMarker = "rosepack-mount-ready\n"

  func run() throws {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: mountpoint, isDirectory: &isDirectory),
      isDirectory.boolValue
    else {
      throw CLIError.usage(
        "\(mountpoint): the mountpoint is not an existing directory; create it first")
    }
    guard access("/dev/fuse", R_OK | W_OK) == 0 else {
      throw CLIError.failed(
        "/dev/fuse is missing or not usable (\(String(cString: strerror(errno)))): load the fuse module or run where FUSE is allowed"
      )
    }
    if !foreground { return try runInBackground() }
    let daemon = ProcessInfo.processInfo.environment[Self.daemonVariable] == "1"
    // The background server leaves the caller's session: a closed terminal must not end the mount.
    if daemon { _ = setsid() }
    let (vol, name) = try volume.open()
    let lock = try lockImage(volume.image, exclusive: !readOnly)
    defer { close(lock) }
    let operations = try openVolume(vol, name: name)
    let mount = FuseMount(volume: operations) { message in
      FileHandle.standardError.write(Data("rosepack: \(message)\n".utf8))
    }
    do {
      try mount.serve(mountpoint: mountpoint, fsname: volume.image) {
        guard daemon else { return }
        // Tell the waiting parent, then stop writing to its pipe so that it sees end of file.
        FileHandle.standardError.write(Data(Self.readyMarker.utf8))
        let null = open("/dev/null", O_RDWR)
        if null >= 0 {
          dup2(null, 1)
          dup2(null, 2)
          close(null)
        }
      }
    } catch {
      throw CLIError.failed(error.description)
    }
    if let e = mount.unmountError {
      throw CLIError.failed("\(name): the clean unmount failed: \(e)")
    }
  }

  /// The engine on the volume (read-only when asked), or the image reader for a read-only mount of a
  /// volume the engine refuses.
  func openVolume(_ vol: ImageFile, name: String) throws -> any VolumeOperations {
    let reader = try ImageReader(image: vol)
    do {
      let device = try FileBlockDevice(
        path: volume.image, byteOffset: vol.baseOffset, blockCount: reader.superblock.blockCount,
        writable: !readOnly)
      return try RoseEngine.open(device: device, subvolume: subvolume, readOnly: readOnly)
    } catch {
      if !readOnly || error.errno == ENOENT {
        throw CLIError.failed("\(name): \(error.detail.isEmpty ? "\(error)" : error.detail)")
      }
    }
    do {
      return try ReadOnlyVolume(reader: reader, subvolume: subvolume)
    } catch {
      throw CLIError.failed("\(name): \(error.detail.isEmpty ? "\(error)" : error.detail)")
    }
  }

  /// Spawns this command again with -f (it starts a new session; forking a Swift process is not safe), its
  /// stderr on a pipe, and waits for the ready marker or for its error.
  func runInBackground() throws {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else {
      throw CLIError.failed("pipe: \(String(cString: strerror(errno)))")
    }
    let (readEnd, writeEnd) = (fds[0], fds[1])
    // Only the child's copies (dup2 onto 1 and 2) may keep the pipe open.
    _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
    _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_adddup2(&actions, writeEnd, 1)
    posix_spawn_file_actions_adddup2(&actions, writeEnd, 2)
    // Nothing else the caller had open may outlive it in the server (a parent waiting for a pipe or
    // socket to close, as Foundation's Process does, would wait for the unmount).
    let inherited = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    for fd in inherited.compactMap({ Int32($0) }) where fd > 2 {
      posix_spawn_file_actions_addclose(&actions, fd)
    }
    let arguments = [CommandLine.arguments[0]] + Array(CommandLine.arguments.dropFirst()) + ["-f"]
    var environment = ProcessInfo.processInfo.environment
    environment[Self.daemonVariable] = "1"
    let cArguments = arguments.map { strdup($0) } + [nil]
    let cEnvironment = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer {
      for p in cArguments { free(p) }
      for p in cEnvironment { free(p) }
    }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, "/proc/self/exe", &actions, nil, cArguments, cEnvironment)
    close(writeEnd)
    defer { close(readEnd) }
    guard status == 0 else {
      throw CLIError.failed("cannot start the mount server: \(String(cString: strerror(status)))")
    }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
      let n = read(readEnd, &buffer, buffer.count)
      if n < 0 && errno == EINTR { continue }
      if n <= 0 { break }
      output += buffer[0..<n]
    }
    let text = String(decoding: output, as: UTF8.self)
    if text.hasSuffix(Self.readyMarker) {
      FileHandle.standardError.write(Data(text.dropLast(Self.readyMarker.count).utf8))
      return
    }
    var exitStatus: Int32 = 0
    waitpid(pid, &exitStatus, 0)
    FileHandle.standardError.write(
      Data(
        (text.isEmpty ? "rosepack: error: the mount server exited without mounting\n" : text).utf8))
    throw ExitCode(1)
  }
}

/// A lock on the image file held while serving: two read-write servers of one image would corrupt
/// it, and `flock IMAGE true` lets a script wait until an unmounted server has finished.
func lockImage(_ path: String, exclusive: Bool) throws -> Int32 {
  let fd = open(path, O_RDONLY | O_CLOEXEC)
  guard fd >= 0 else {
    throw CLIError.failed("\(path): cannot open: \(String(cString: strerror(errno)))")
  }
  guard flock(fd, (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB) == 0 else {
    close(fd)
    throw CLIError.failed(
      "\(path) is in use by another rosepack mount or update; unmount it first")
  }
  return fd
}
