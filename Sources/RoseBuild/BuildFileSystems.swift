import CRoseSystem
import Foundation
import RoseDisk
import RoseFS
import RoseIngest
import RoseMkfs
import RoseRecipe

/// A partition of a format RoseMkfs makes: its tree, staged once, and for an automatically sized
/// partition the smallest filesystem, built once to learn the content size.
final class ForeignFileSystem {
  let format: FileSystemFormat
  let scratch: String
  var tree: StagedTree?
  var minimal: FileSystemImage?

  init(format: FileSystemFormat, scratch: String) {
    self.format = format
    self.scratch = scratch
  }

  deinit { try? FileManager.default.removeItem(atPath: scratch) }
}

extension BuildPipeline {
  /// The content layers of `spec` read into a tree (with the same filler as a RoseFS partition),
  /// checked for what the format can hold and staged as a tarball; an automatically sized
  /// partition is built at its smallest size here.
  func prepareFileSystem(_ spec: PartitionSpec, index: Int) throws -> BuildContent {
    guard let format = FileSystemFormat(rawValue: spec.format.rawValue) else {
      throw BuildFailure.internalError("no maker for Format=\(spec.format.rawValue)")
    }
    let scratch = staging + "/.mkfs-\(index)"
    do {
      try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    } catch {
      throw BuildFailure.io(
        path: scratch, operation: "mkdir", errno: BuildPipeline.errnoCode(of: error))
    }
    let content = ForeignFileSystem(format: format, scratch: scratch)
    if format == .swap {
      if let layer = spec.layers.first {
        throw BuildFailure.unbuildable(
          label: spec.label, at: layer.layer.position,
          message: "partition '\(spec.label)': a swap area holds no files",
          hint: "remove the content keys, or give the partition a Format= that holds files")
      }
    } else {
      content.tree = try stageTree(spec, format: format, scratch: scratch)
    }
    if case .fixed = spec.size {
    } else {
      progress.update("\(spec.label): building the smallest \(format.rawValue)")
      content.minimal = try makeFileSystem(spec, content, size: nil)
    }
    return .fileSystem(content)
  }

  /// Reads the layers into a scratch RoseFS builder (the tree model every ingest path fills), then
  /// exports the tree as the staged tarball.
  func stageTree(_ spec: PartitionSpec, format: FileSystemFormat, scratch: String) throws
    -> StagedTree
  {
    let fd = try createFile(scratch + "/tree.rosefs")
    defer {
      close(fd.fd)
      unlink(fd.path)
    }
    do {
      let builder = try ImageBuilder(
        image: ImageFile(fd: fd.fd, path: fd.path),
        options: BuildOptions(size: nil, label: "", uuid: nil, sourceDateEpoch: epoch))
      progress.update("\(spec.label): reading inputs")
      let filler = BuildSlotFiller(recipe: recipe, spec: spec, builder: builder, progress: progress)
      defer { noteWarnings(filler.warnings) }
      let subvolumes = try filler.fill()
      guard let root = subvolumes.first?.root else {
        throw BuildFailure.internalError("partition '\(spec.label)': the filler made no tree")
      }
      progress.update("\(spec.label): staging the tree")
      return try StagedTree(root: root, source: builder.data, format: format, scratch: scratch)
    } catch let error as UnsupportedContent {
      throw BuildFailure.partition(
        label: spec.label, at: layerPosition(spec, entry: error.entry),
        cause: .unsupportedContent(error))
    } catch {
      throw failure(of: spec, error)
    }
  }

  /// The recipe line that most likely put `entry` in the tree: the last layer whose destination is
  /// the entry or one of its parent directories (the partition header when none is).
  func layerPosition(_ spec: PartitionSpec, entry: String) -> SourcePosition {
    func covers(_ destination: String) -> Bool {
      destination == "/" || entry == destination || entry.hasPrefix(destination + "/")
    }
    for slotted in spec.layers.reversed() {
      switch slotted.layer {
      case .tarball(_, let destination, let at), .directory(_, let destination, let at):
        if covers(destination) { return at }
      case .file(_, let destination, _, let at), .inline(let destination, _, let at),
        .template(_, let destination, let at), .symlink(let destination, _, let at):
        if entry == destination { return at }
      case .makeDirectories(let paths, let at):
        if paths.contains(entry) { return at }
      case .ownership(_, let overrides, let at):
        if overrides.contains(where: { "/" + $0.path == entry || $0.path == entry }) { return at }
      case .remove:
        break
      }
    }
    return spec.position
  }

  /// One mkfs run; tool failures are I/O failures naming the tool, not recipe errors.
  func makeFileSystem(_ spec: PartitionSpec, _ content: ForeignFileSystem, size: UInt64?) throws
    -> FileSystemImage
  {
    let request = FileSystemRequest(
      format: content.format, size: size, label: volumeLabel(spec, content.format),
      uuid: GUID.derived(seed: seed, label: content.format.rawValue + ":" + spec.label),
      sourceDateEpoch: epoch, compression: spec.compression,
      compressionLevel: spec.compressionLevel, extraOptions: spec.makeFileSystemOptions,
      sectorSize: UInt64(recipe.image.sectorSize))
    do {
      return try FileSystemMaker.make(request, tree: content.tree, scratch: content.scratch)
    } catch {
      throw failure(of: spec, error)
    }
  }

  /// `VolumeLabel=`, else the partition label cut to what the format holds (none for erofs and
  /// squashfs).
  func volumeLabel(_ spec: PartitionSpec, _ format: FileSystemFormat) -> String? {
    if let label = spec.volumeLabel { return label }
    let limit: Int
    switch format {
    case .erofs, .squashfs: return nil
    case .vfat: return spec.label  // upper-cased and cut to 11 bytes by RoseMkfs
    case .xfs: limit = 12
    case .ext2, .ext3, .ext4, .swap: limit = 16
    case .btrfs: limit = 255
    case .f2fs: limit = 512
    }
    var label = ""
    for character in spec.label where label.utf8.count + character.utf8.count <= limit {
      label.append(character)
    }
    return label.isEmpty ? nil : label
  }

  /// Writes the filesystem into the disk at `part` and maps its data.
  func writeFileSystem(
    _ spec: PartitionSpec, _ content: ForeignFileSystem, part: PlannedPartition,
    into image: AtomicOutputFile, map: inout AllocationMap
  ) throws {
    let built: FileSystemImage
    if let minimal = content.minimal, content.format.isReadOnly || minimal.size == part.size {
      built = minimal
    } else {
      progress.update("\(spec.label): building \(content.format.rawValue)")
      built = try makeFileSystem(spec, content, size: part.size)
    }
    defer { unlink(built.path) }
    do {
      _ = try RawImageOutput.copyFile(
        built.path, into: image.fd, imagePath: image.temporaryPath, offset: part.offset,
        capacity: part.size, label: spec.label)
    } catch {
      throw failure(of: spec, error)
    }
    for (start, length) in dataRanges(built.path) where start < part.size {
      map.insert(offset: part.offset + start, length: min(length, part.size - start))
    }
  }

  /// The data ranges of a sparse file (SEEK_DATA/SEEK_HOLE); all of it where seeking fails.
  func dataRanges(_ path: String) -> [(UInt64, UInt64)] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    let size = lseek(fd, 0, SEEK_END)
    guard size > 0 else { return [] }
    var ranges: [(UInt64, UInt64)] = []
    var position: off_t = 0
    while position < size {
      let data = lseek(fd, position, rose_seek_data)
      if data < 0 { break }
      var hole = lseek(fd, data, rose_seek_hole)
      if hole < 0 { hole = size }
      ranges.append((UInt64(data), UInt64(hole - data)))
      position = hole
    }
    return ranges
  }
}
