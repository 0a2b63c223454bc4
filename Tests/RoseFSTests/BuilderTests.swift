import Foundation
import Testing

@testable import RoseFS

/// A temp file that removes itself.
final class TempImage {
  let path: String
  let fd: Int32
  init() {
    path =
      FileManager.default.temporaryDirectory.appendingPathComponent("rose-\(UUID().uuidString).img")
      .path
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o644)
  }
  deinit {
    close(fd)
    unlink(path)
  }
  var image: ImageFile { ImageFile(fd: fd, path: path) }
}

/// Builds a small tree: root, a few files of edge sizes, a subdirectory; returns builder and root.
func makeSmallTree(_ b: ImageBuilder) throws -> Inode {
  let t = Timestamp(seconds: 1_700_000_000, nanoseconds: 5)
  let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: t)
  for size in [0, 1, 368, 369, 4095, 4096, 4097, 8192, 100_000] {
    let f = b.makeInode(kind: .regular, permissions: 0o644, uid: 1000, gid: 100_000, mtime: t)
    let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ size) }
    f.content = try b.data.store(bytes, ino: f.ino)
    root.children[Name("f\(size)")] = f
  }
  let sub = b.makeInode(kind: .directory, permissions: 0o700, mtime: t)
  root.children[Name("sub")] = sub
  for i in 0..<300 {
    let s = b.makeInode(kind: .symlink, permissions: 0o777, mtime: t)
    s.content = try b.data.store(Array("target-\(i)".utf8), ino: s.ino)
    sub.children[Name("link-\(i)")] = s
  }
  return root
}

@Suite struct BuilderTests {
  @Test func packsAndWritesValidSuperblockAndCheckpoint() throws {
    let tmp = TempImage()
    let b = try ImageBuilder(
      image: tmp.image, options: BuildOptions(label: "t", sourceDateEpoch: 1_700_000_000))
    let root = try makeSmallTree(b)
    let report = try b.finish(subvolumes: [Subvolume(name: "a", root: root)])
    #expect(report.volumeBytes == (16 + 64 * 64) * 4096)  // smallest volume >= 16 MiB
    let img = tmp.image
    let sb = try Superblock.decode(try img.read(count: 256, atByte: 1024))
    #expect(sb.blockCount == 16 + 64 * 64)
    #expect(
      try img.read(count: 256, atByte: 4096 + 1024) == (try img.read(count: 256, atByte: 1024)))
    let cp = try #require(
      Checkpoint.decode(try img.readBlock(2), checksum: RoseChecksum(uuid: sb.uuid)))
    #expect(cp.cpVer == 1)
    #expect(cp.heads.count == 1)
    #expect(cp.heads[0].rootIno == root.ino)
  }

  @Test func twoBuildsAreByteIdentical() throws {
    var digests: [[UInt8]] = []
    for _ in 0..<2 {
      let tmp = TempImage()
      let b = try ImageBuilder(
        image: tmp.image, options: BuildOptions(label: "t", sourceDateEpoch: 1_700_000_000))
      let root = try makeSmallTree(b)
      _ = try b.finish(subvolumes: [
        Subvolume(name: "a", root: root), Subvolume(name: "b", root: root),
      ])
      digests.append(try tmp.image.read(count: Int(tmp.image.fileSize), atByte: 0))
    }
    #expect(digests[0] == digests[1])
  }

  @Test func snapshotCostsNoBlocks() throws {
    let t1 = TempImage()
    let b1 = try ImageBuilder(image: t1.image, options: BuildOptions(sourceDateEpoch: 1))
    let r1 = try b1.finish(subvolumes: [Subvolume(name: "a", root: try makeSmallTree(b1))])
    let t2 = TempImage()
    let b2 = try ImageBuilder(image: t2.image, options: BuildOptions(sourceDateEpoch: 1))
    let root = try makeSmallTree(b2)
    let r2 = try b2.finish(subvolumes: [
      Subvolume(name: "a", root: root), Subvolume(name: "b", root: root),
    ])
    #expect(r1.liveBlocks == r2.liveBlocks)
    let sb = try Superblock.decode(try t2.image.read(count: 256, atByte: 1024))
    let cp = try #require(
      Checkpoint.decode(try t2.image.readBlock(2), checksum: RoseChecksum(uuid: sb.uuid)))
    #expect(cp.heads[1].vbmSource == 0)
    #expect(cp.heads[1].nat == cp.heads[0].nat)
  }

  @Test func tooSmallSizeNamesTheSizeNeeded() throws {
    let tmp = TempImage()
    let b = try ImageBuilder(
      image: tmp.image, options: BuildOptions(size: 16 << 20, sourceDateEpoch: 1))
    let root = b.makeInode(kind: .directory, permissions: 0o755, mtime: Timestamp(seconds: 0))
    let f = b.makeInode(kind: .regular, permissions: 0o644, mtime: Timestamp(seconds: 0))
    try b.data.beginFile(ino: f.ino, size: 20 << 20)
    let chunk = [UInt8](repeating: 1, count: 1 << 20)
    for i in 0..<20 { try b.data.write(chunk, at: UInt64(i) << 20) }
    f.content = try b.data.finishFile()
    root.children[Name("big")] = f
    #expect {
      _ = try b.finish(subvolumes: [Subvolume(name: "a", root: root)])
    } throws: { e in
      guard case RoseFSError.volumeTooSmall(let need, _) = e else { return false }
      return need > 20 << 20 && need < 23 << 20
    }
  }
}

@Suite struct SnapshotCloneTests {
  /// B's copy of a file (same ino, same data, other metadata) shares the data blocks; fsck stays clean.
  @Test func clonedFileSharesDataAndChecksClean() throws {
    let tmp = TempImage()
    let b = try ImageBuilder(image: tmp.image, options: BuildOptions(sourceDateEpoch: 1))
    let rootA = try makeSmallTree(b)
    let rootB = b.snapshot(rootA)
    let f = try #require(rootA.children[Name("f100000")])
    let clone = f.clone()
    clone.permissions = 0o600
    rootB.children[Name("f100000")] = clone
    let report = try b.finish(subvolumes: [
      Subvolume(name: "a", root: rootA), Subvolume(name: "b", root: rootB),
    ])
    #expect(Fsck.check(image: tmp.image).isEmpty, "\(Fsck.check(image: tmp.image).prefix(3))")
    // B's private blocks: its inode page and its NAT block, not the 25 data blocks.
    #expect(report.privateBlocksPerHead[1] <= 4)
    let r = try ImageReader(image: tmp.image)
    let ino = try r.lookup("/f100000", head: 1)
    #expect(try r.readInodeRecord(ino, head: 1).permissions == 0o600)
    #expect(try r.readInodeRecord(ino, head: 0).permissions == 0o644)
  }
}
