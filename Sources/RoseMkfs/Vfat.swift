import Foundation
import RoseDisk
import RoseFS

/// vfat from the staged tree, like every other format: the tree is written out as plain files
/// (`StagedTree.plainTree`), then `mkfs.vfat --invariant`, one `mmd` for every directory, one
/// `mcopy` per directory with its files in sorted order, and one `mattrib +r` for the files
/// without any write bit (`FATPartition.build(at:...)`).
///
/// Why not one `mcopy -s` of the staged tree: mcopy recurses in readdir order, which is the
/// host filesystem's (ext4: the order of a name hash seeded per filesystem; tmpfs: creation
/// order), so the FAT directory order and the cluster allocation, and with them the image bytes,
/// would differ between machines. One `mcopy` per directory with the sorted names as sources
/// fixes the order and still starts one process per directory, not per file.
///
/// What FAT holds: directories, regular files, names (UTF-16 long names with a generated 8.3
/// alias) and the read-only attribute. Every entry gets SOURCE_DATE_EPOCH as its time (in UTC,
/// clamped to 1980..2107); owners and other mode bits are not stored. Symlinks, devices,
/// fifos, sockets, hard links, xattrs and names FAT cannot hold are refused by
/// `StagedTree.check` before anything runs.
struct VfatMaker {
  var request: FileSystemRequest
  var tree: StagedTree?

  func make(_ output: String) throws -> FileSystemImage {
    guard let tree, var plain = tree.plainTree else { throw UnsupportedContent.noTree(.vfat) }
    // mtools reads a source "X:..." as a DOS drive: hand it absolute paths only.
    if !plain.hasPrefix("/") {
      plain = FileManager.default.currentDirectoryPath + "/" + plain
    }
    var directories: [String] = []
    var copies: [(String, String)] = []
    var readOnly: [String] = []
    var bytes: UInt64 = 0
    walkTree(tree.root) { path, inode in
      let name = String(decoding: path, as: UTF8.self)
      // A cluster per started 4 KiB of data and per directory, 32 bytes per 13 UTF-16 units of
      // name plus the 8.3 entry.
      let last = path.split(separator: UInt8(ascii: "/")).last?.count ?? 0
      bytes += 64 + UInt64(last / 13) * 32
      if inode.kind == .directory {
        directories.append(name)
        bytes += 4096
      } else {
        copies.append((plain + "/" + name, name))
        bytes += (inode.content.size + 4095) / 4096 * 4096
        if inode.permissions & 0o222 == 0 { readOnly.append(name) }
      }
    }
    // walkTree visits parents first and names in byte order, as mmd needs them.
    let estimate = align(bytes + bytes / 10 + (2 << 20))
    let label = Self.label(request.label)
    var fat = FATPartition(
      size: 0, label: label, volumeID: UInt32(truncatingIfNeeded: request.uuid.high >> 32),
      sourceDateEpoch: UInt64(clamping: request.sourceDateEpoch),
      sectorSize: request.sectorSize)
    fat.extraOptions = request.extraOptions
    func build(_ size: UInt64) throws {
      fat.size = size
      do {
        try fat.build(
          at: output, directories: directories, copies: copies, readOnly: readOnly,
          scratch: tree.scratch)
      } catch DiskError.toolFailed(_, _, _, let text)
        where text.contains("Disk full") || text.contains("No directory slots")
      {
        throw ContentDoesNotFit(needed: max(size + 1, estimate), available: size)
      }
    }
    if let size = request.size {
      try build(size)
      return FileSystemImage(path: output, size: size)
    }
    var size = estimate
    while true {
      do {
        try build(size)
        return FileSystemImage(path: output, size: size)
      } catch is ContentDoesNotFit where size < 1 << 42 {
        size = align(size + size / 2)
      }
    }
  }

  /// The volume label mkfs.vfat gets: upper case, at most 11 bytes, characters FAT labels take
  /// (others become `_`); "NO NAME" (FAT's own word for none) when there is none.
  static func label(_ label: String?) -> String {
    guard let label, !label.isEmpty else { return "NO NAME" }
    var out = ""
    for character in label.uppercased() {
      let mapped: Character =
        character.isASCII && (character.isLetter || character.isNumber || "_- ".contains(character))
        ? character : "_"
      guard out.utf8.count < 11 else { break }
      out.append(mapped)
    }
    return out
  }
}
