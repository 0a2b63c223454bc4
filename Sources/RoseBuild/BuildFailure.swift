import Foundation
import RoseDisk
import RoseFS
import RoseIngest
import RoseMkfs
import RoseRecipe
import RoseSizes

/// Why a build failed. Every case keeps its cause as a typed value and the partition (by label)
/// and recipe line it belongs to, so that callers and tests match on values, never on text.
/// `diagnostics` words the failure for the recipe's author (compiler style); failures that do not
/// belong to a recipe line (`io`, `internalError`) have none and are printed with `description`.
public enum BuildFailure: Error, CustomStringConvertible {
  /// Diagnostics the recipe layer made (a template that does not render, ...), already placed.
  case recipe([RecipeError])
  /// A recipe line the pipeline cannot build as written (`Format=raw` without `CopyBlocks=`, a
  /// layer a vfat partition cannot hold, verity without a key, ...). `label`: its partition.
  case unbuildable(label: String?, at: SourcePosition, message: String, hint: String?)
  /// One content layer of partition `label` failed: `at` is the layer's line.
  case layer(label: String, at: SourcePosition, cause: PartitionFailure)
  /// Partition `label` failed as a whole (packing, mkfs, copying it in, verity): `at` is the
  /// partition's line, or the layer that most likely put the offending entry there.
  case partition(label: String, at: SourcePosition, cause: PartitionFailure)
  /// Partition `label` needs `needed` bytes and has `available`; `largestInputs` are the inputs
  /// that take the most (largest first, at most three), to say what to remove.
  case doesNotFit(
    label: String, at: SourcePosition, needed: UInt64, available: UInt64,
    largestInputs: [SizedInput])
  /// A `Verity=signature` partition and no key to sign with (`verityPrivateKey`,
  /// `verityCertificate`).
  case signingKeyMissing(label: String, at: SourcePosition)
  /// A repart.d partition that does not fit on a disk of the size given (with the space left).
  case noRoomOnDisk(label: String, at: SourcePosition, needed: UInt64, available: UInt64)
  /// The disk size given for a repart.d build is below what its partitions need.
  case diskBelowMinimum(given: UInt64, minimum: UInt64)
  /// The disk layout failed: `at` is the line of the partition the error names, else the recipe
  /// file (line 0).
  case disk(DiskError, at: SourcePosition)
  /// A partition table or blob failed; `at` is the line of the partition or blob it names.
  case table(TableError, at: SourcePosition)
  /// Writing the disk image or an output encoder's file failed (no one partition's fault).
  case output(PartitionFailure)
  /// The output directory (or an output in it) exists and is not what it must be.
  case outputOccupied(path: String, kind: String, wanted: OutputTarget.Wanted)
  /// A file operation of the pipeline itself (staging directory, output directory, publishing).
  case io(path: String, operation: String, errno: Int32)
  /// A broken invariant of the pipeline: a bug in rosepack, never bad input.
  case internalError(String)

  /// An input of a partition and its size on the host.
  public struct SizedInput: Sendable, Equatable {
    public var name: String
    public var bytes: UInt64
    public var at: SourcePosition
  }

  /// The partition this failure is about, if any.
  public var partitionLabel: String? {
    switch self {
    case .layer(let label, _, _), .partition(let label, _, _), .signingKeyMissing(let label, _),
      .doesNotFit(let label, _, _, _, _), .noRoomOnDisk(let label, _, _, _):
      return label
    case .unbuildable(let label, _, _, _): return label
    case .disk(let error, _): return error.partitionLabel
    case .table(let error, _): return BuildFailure.subject(of: error).partition
    default: return nil
    }
  }

  /// The typed cause of a layer or partition failure.
  public var cause: PartitionFailure? {
    switch self {
    case .layer(_, _, let cause), .partition(_, _, let cause): return cause
    default: return nil
    }
  }

  /// Compiler-style diagnostics at recipe lines; nil when the failure has no recipe line.
  public var diagnostics: [RecipeError]? {
    func at(_ position: SourcePosition, _ message: String, hint: String? = nil) -> [RecipeError] {
      [
        RecipeError(
          file: position.file, line: position.line, column: position.column, message: message,
          hint: hint)
      ]
    }
    switch self {
    case .recipe(let errors):
      return errors
    case .unbuildable(_, let position, let message, let hint):
      return at(position, message, hint: hint)
    case .layer(_, let position, let cause):
      return at(position, cause.description, hint: cause.hint)
    case .partition(let label, let position, let cause):
      return at(position, "partition '\(label)': \(cause)", hint: cause.hint)
    case .doesNotFit(let label, let position, let needed, let available, let inputs):
      var message =
        "partition '\(label)' needs \(formatSize(needed, exact: true)), has \(formatSize(available, exact: true))"
      if !inputs.isEmpty {
        message +=
          "; the largest inputs are "
          + inputs.map { "\($0.name) (\(formatSize($0.bytes, exact: true)), line \($0.at.line))" }
          .joined(separator: ", ")
      }
      return at(
        position, message,
        hint: "raise SizeMaxBytes= (or SizeMinBytes=/DiskSize=), or remove content")
    case .signingKeyMissing(let label, let position):
      return at(
        position, "Verity=signature partition '\(label)' needs a key to sign with",
        hint: "give the build a PEM private key and its certificate")
    case .noRoomOnDisk(let label, let position, let needed, let available):
      return at(
        position,
        "partition '\(label)' needs \(formatSize(needed, exact: true)), the disk has "
          + "\(formatSize(available, exact: true)) left for it",
        hint: "give a larger disk, or lower SizeMinBytes=/PaddingMinBytes=")
    case .diskBelowMinimum(let given, let minimum):
      return at(
        SourcePosition(file: "disk of \(formatSize(given, exact: true))", line: 0, column: 0),
        "the disk is too small: these partitions need at least \(formatSize(minimum, exact: true))")
    case .disk(let error, let position):
      return at(position, error.description)
    case .table(let error, let position):
      return at(position, error.description)
    case .output, .outputOccupied, .io, .internalError:
      return nil
    }
  }

  public var description: String {
    switch self {
    case .outputOccupied(let path, let kind, let wanted):
      switch wanted {
      case .directory:
        return "\(path): exists and is \(kind); give a directory for the outputs"
      case .regularFile:
        return
          "\(path): exists and is \(kind), not a regular file; refused (rosepack only replaces regular files)"
      case .regularTarget:
        return "\(path): points at \(kind); give a regular file path"
      case .replaceable:
        return
          "\(path): exists and is \(kind); no output was replaced. Move it away and build again"
      }
    case .output(let cause):
      return cause.description
    case .io(let path, let operation, let code):
      return "\(path): \(operation) failed: \(String(cString: strerror(code)))"
    case .internalError(let message):
      return "internal error (a bug in rosepack, please report it): \(message)"
    default:
      return (diagnostics ?? []).map(\.description).joined(separator: "\n")
    }
  }

  /// The partition or blob a table error names (TableError keeps them as values).
  static func subject(of error: TableError) -> (partition: String?, blob: String?) {
    switch error {
    case .tooManyPrimaries(let label, _), .beyondMBRLimit(let label, _): return (label, nil)
    case .tooManyHybrid(let labels): return (labels.first, nil)
    case .blobOverlap(let blob, _, _, _, _, _), .blobBeyondDisk(let blob, _, _): return (nil, blob)
    }
  }
}

/// The typed cause of a partition's failure, as the module that found it threw it.
public enum PartitionFailure: Error, CustomStringConvertible {
  /// Reading an input (tarball, host directory, file) into the tree.
  case ingest(IngestError)
  /// The RoseFS format library (packing, a volume size, an invariant).
  case format(RoseFSError)
  /// Disk outputs, verity, tools run for a filesystem (RoseDisk, RoseMkfs).
  case disk(DiskError)
  /// Content the partition's filesystem (RoseMkfs) cannot hold.
  case unsupportedContent(UnsupportedContent)
  /// A template or other recipe-level failure inside a layer.
  case recipe(RecipeError)
  /// A host library error (Foundation) without a type of ours, kept as it was thrown.
  case host(any Error)

  /// `error` as the cause it is; the pipeline's own failures are not causes and are rethrown by
  /// the caller before this is reached.
  public init(_ error: any Error) {
    switch error {
    case let e as IngestError: self = .ingest(e)
    case let e as RoseFSError: self = .format(e)
    case let e as DiskError: self = .disk(e)
    case let e as UnsupportedContent: self = .unsupportedContent(e)
    case let e as RecipeError: self = .recipe(e)
    default: self = .host(error)
    }
  }

  var hint: String? {
    switch self {
    case .unsupportedContent: return "see docs/FILESYSTEMS.md for what each format keeps"
    default: return nil
    }
  }

  public var description: String {
    switch self {
    case .ingest(let e): return e.description
    case .format(let e): return e.description
    case .disk(let e): return e.description
    case .unsupportedContent(let e): return e.description
    case .recipe(let e): return e.message
    case .host(let e): return (e as NSError).localizedDescription
    }
  }
}
