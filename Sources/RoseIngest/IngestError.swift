import RoseFS

/// Errors of ingest and export. Each names the input file, the entry (as bytes made printable) and
/// what the user can do; the CLI prints `description` once.
public enum IngestError: Error, CustomStringConvertible, Equatable {
  /// An entry path with a `..` component.
  case dotDotComponent(input: String, entry: [UInt8])
  /// An entry whose parent path passes through a symlink or a non-directory.
  case parentNotDirectory(input: String, entry: [UInt8], parent: [UInt8])
  /// A name component longer than 255 bytes.
  case nameTooLong(input: String, entry: [UInt8], length: Int)
  /// An empty entry name (or one that normalises to nothing where a file is needed).
  case emptyName(input: String, position: String)
  /// A hard link whose target is not in the tree.
  case hardLinkTargetMissing(input: String, entry: [UInt8], target: [UInt8])
  /// A hard link whose target is a directory.
  case hardLinkToDirectory(input: String, entry: [UInt8], target: [UInt8])
  /// A symlink target longer than 4095 bytes.
  case symlinkTargetTooLong(input: String, entry: [UInt8], length: Int)
  /// The input is not an archive libarchive recognises.
  case notAnArchive(input: String, detail: String)
  /// The archive is truncated or corrupt at `entry` / `offset` (bytes of the compressed input).
  case corruptArchive(input: String, entry: [UInt8]?, offset: Int64, detail: String)
  /// An entry of a type RoseFS cannot store.
  case unsupportedType(input: String, entry: [UInt8], mode: UInt32)
  /// A system call on a host path failed.
  case io(path: String, operation: String, errno: Int32)
  /// Writing the image failed while an entry's data streamed in; the format library's error is kept.
  case image(input: String, entry: [UInt8], underlying: RoseFSError)
  /// A path the recipe names does not exist in the tree.
  case notFound(path: [UInt8])
  /// A recipe-level request that cannot be done (bad fs_config line, glob, mode...).
  case invalid(input: String, detail: String)
  /// Writing an export tarball failed.
  case export(output: String, entry: [UInt8]?, detail: String)

  static func p(_ b: [UInt8]) -> String { "'" + Name.printable(b) + "'" }

  public var description: String {
    switch self {
    case .dotDotComponent(let i, let e):
      return
        "\(i): entry \(Self.p(e)) has a '..' component, which could escape the image root; refused. Rebuild the archive without it or exclude the entry"
    case .parentNotDirectory(let i, let e, let parent):
      return
        "\(i): entry \(Self.p(e)) lies under \(Self.p(parent)), which is a symlink or not a directory; refused (it would write outside the directory it names). Remove the entry or the conflicting \(Self.p(parent))"
    case .nameTooLong(let i, let e, let n):
      return
        "\(i): entry \(Self.p(e)) has a name component of \(n) bytes; RoseFS allows at most 255. Rename it"
    case .emptyName(let i, let pos):
      return
        "\(i): entry with an empty name at \(pos); refused. The archive is damaged or was made oddly"
    case .hardLinkTargetMissing(let i, let e, let t):
      return
        "\(i): hard link \(Self.p(e)) points to \(Self.p(t)), which is not in the tree (hard link targets must come earlier in the input)"
    case .hardLinkToDirectory(let i, let e, let t):
      return
        "\(i): hard link \(Self.p(e)) points to directory \(Self.p(t)); hard links to directories are refused"
    case .symlinkTargetTooLong(let i, let e, let n):
      return "\(i): symlink \(Self.p(e)) has a target of \(n) bytes; at most 4095 are allowed"
    case .notAnArchive(let i, let d):
      return
        "\(i): not an archive rosepack can read (\(d)). Inputs must be \(ArchiveFormats.formatNames), optionally compressed with \(ArchiveFormats.filterNames)"
    case .corruptArchive(let i, let e, let off, let d):
      let at = e.map { " at entry \(Self.p($0))" } ?? ""
      return
        "\(i): archive is truncated or corrupt\(at), near byte \(off) of the input: \(d). Check the download (checksum) or recreate the archive"
    case .unsupportedType(let i, let e, let m):
      return
        "\(i): entry \(Self.p(e)) has file type 0o\(String(m, radix: 8)), which RoseFS cannot store"
    case .io(let path, let op, let e):
      return "\(path): \(op) failed: \(String(cString: strerror(e)))"
    case .image(let i, let e, let u):
      return "\(i): writing the data of \(Self.p(e)) into the image failed: \(u)"
    case .notFound(let path):
      return "\(Self.p(path)): no such path in the image tree"
    case .invalid(let i, let d):
      return "\(i): \(d)"
    case .export(let o, let e, let d):
      let at = e.map { " at entry \(Self.p($0))" } ?? ""
      return "\(o): export failed\(at): \(d)"
    }
  }
}

#if canImport(Glibc)
  import Glibc
#elseif canImport(Darwin)
  import Darwin
#endif
