import Foundation
import RoseSizes

/// Every error thrown by RoseDisk. Each case carries the file, partition label or value that
/// caused it, and `description` says what to do about it.
public enum DiskError: Error, CustomStringConvertible, Equatable, Sendable {
  /// A system call on `path` failed (`operation` names it, `code` is errno).
  case io(path: String, operation: String, code: Int32)
  /// A string that should be a GUID is not one.
  case invalidGUID(String)
  /// A partition type name is not known; `closeMatches` lists similar known names.
  case unknownPartitionType(name: String, closeMatches: [String])
  /// Sector size other than 512, 1024, 2048 or 4096.
  case invalidSectorSize(UInt64)
  /// Alignment that is zero or not a multiple of the sector size.
  case invalidAlignment(alignment: UInt64, sectorSize: UInt64)
  /// More partitions than GPT entries.
  case tooManyPartitions(count: Int, maximum: Int)
  /// Label that is too long or used twice.
  case invalidLabel(label: String, reason: String)
  /// A size rule that makes no sense (min above max, zero size, ...).
  case invalidSizeRule(label: String, reason: String)
  /// The partition needs `needed` bytes but only `available` bytes are there for it.
  case partitionDoesNotFit(label: String, needed: UInt64, available: UInt64)
  /// The fixed disk size is smaller than the layout needs.
  case diskTooSmall(needed: UInt64, given: UInt64)
  /// An offset or size (`what`) is not a multiple of `alignment`.
  case misaligned(label: String, what: String, value: UInt64, alignment: UInt64)
  /// A partition with a given offset starts inside `other`.
  case overlap(label: String, other: String, offset: UInt64, otherEnd: UInt64)
  /// A partition table that fails validation.
  case invalidGPT(path: String, reason: String)
  /// `ls --partition` style lookup failed.
  case partitionNotFound(path: String, selector: String, available: [String])
  /// An external tool is not installed.
  case toolMissing(tool: String, debianPackage: String)
  /// An external tool exited with an error.
  case toolFailed(tool: String, arguments: [String], status: Int32, output: String)
  /// Compression library failure.
  case compression(path: String, reason: String)
  /// Input data that cannot be used (too large, wrong size, ...).
  case invalidInput(path: String, reason: String)

  /// The partition the error is about, for callers that point at its recipe section.
  public var partitionLabel: String? {
    switch self {
    case .invalidLabel(let label, _), .invalidSizeRule(let label, _),
      .partitionDoesNotFit(let label, _, _), .misaligned(let label, _, _, _),
      .overlap(let label, _, _, _):
      return label
    default:
      return nil
    }
  }

  public var description: String {
    switch self {
    case .io(let path, let operation, let code):
      let message = String(cString: strerror(code))
      let hint: String
      switch code {
      case ENOSPC: hint = "the disk is full; free space there or write elsewhere"
      case EFBIG:
        hint =
          "the size or offset is beyond what a file can have (below 2^63 bytes); check the sizes asked for"
      default: hint = "check that the path exists, is writable and that the disk has space"
      }
      return "\(path): \(operation) failed: \(message) (errno \(code)); \(hint)"
    case .invalidGUID(let text):
      return
        "'\(text)' is not a GUID; write it as xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx (hex digits)"
    case .unknownPartitionType(let name, let matches):
      let hint =
        matches.isEmpty
        ? "use a Discoverable Partitions name (esp, root, usr, home, swap, linux-generic, ...) or a literal GUID"
        : "did you mean \(matches.map { "'\($0)'" }.joined(separator: ", "))?"
      return "unknown partition type '\(name)'; \(hint)"
    case .invalidSectorSize(let size):
      return "sector size \(size) is not supported; use 512 or 4096"
    case .invalidAlignment(let alignment, let sectorSize):
      return "alignment \(alignment) must be a non-zero multiple of the sector size \(sectorSize)"
    case .tooManyPartitions(let count, let maximum):
      return
        "\(count) partitions requested but a GPT holds at most \(maximum); remove \(count - maximum)"
    case .invalidLabel(let label, let reason):
      return "partition '\(label)': \(reason)"
    case .invalidSizeRule(let label, let reason):
      return "partition '\(label)': \(reason)"
    case .partitionDoesNotFit(let label, let needed, let available):
      return
        "partition '\(label)' does not fit: needs \(formatSize(needed, exact: true)), has \(formatSize(available, exact: true)); "
        + "raise its size/max or the disk size"
    case .diskTooSmall(let needed, let given):
      return
        "disk size \(formatSize(given, exact: true)) is too small: the layout needs \(formatSize(needed, exact: true)); "
        + "raise the disk size or leave it unset for automatic sizing"
    case .misaligned(let label, let what, let value, let alignment):
      return "partition '\(label)': \(what) \(value) is not a multiple of \(alignment) bytes; "
        + "round it to a multiple of \(alignment)"
    case .overlap(let label, let other, let offset, let otherEnd):
      return
        "partition '\(label)' at offset \(offset) overlaps \(other) which ends at \(otherEnd); "
        + "move it to \(otherEnd) or later, or drop the fixed offset"
    case .invalidGPT(let path, let reason):
      return "\(path): invalid GPT: \(reason)"
    case .partitionNotFound(let path, let selector, let available):
      return "\(path): no partition '\(selector)'; available: \(available.joined(separator: ", "))"
    case .toolMissing(let tool, let package):
      return
        "'\(tool)' was not found in PATH; install the Debian package '\(package)' (apt-get install \(package))"
    case .toolFailed(let tool, let arguments, let status, let output):
      let trimmed = output.trimmingCharacters(in: .whitespacesAndNewlines)
      return "\(tool) \(arguments.joined(separator: " ")) failed with status \(status): \(trimmed)"
    case .compression(let path, let reason):
      return "\(path): compression failed: \(reason)"
    case .invalidInput(let path, let reason):
      return "\(path): \(reason)"
    }
  }
}
