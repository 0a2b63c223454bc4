import CArchive
import Glibc

/// The archive formats and compressions rosepack reads, in one place: `ArchiveReader` and
/// `PaxHeaderScanner` register them, and `IngestError` names them when an input is none of them.
///
/// Every format and filter libarchive reads by itself is here, with three exceptions:
/// - mtree: a manifest that names files on this machine, which libarchive would open relative to
///   the working directory; give rosepack the directory instead.
/// - grzip, lrzip and lzop: libarchive runs an external program for them.
/// - raw (a bare compressed file with no archive inside): it would accept any file as one entry.
enum ArchiveFormats {
  /// The names users know, for messages.
  static let formatNames =
    "tar (ustar, pax, GNU), cpio, zip, 7-Zip, ISO 9660, xar, ar, cab, LHA, RAR, RAR 5 or WARC"
  static let filterNames = "gzip, bzip2, xz, lzma, lzip, zstd, lz4, compress (.Z), uuencode or rpm"

  /// Registers every decompression filter rosepack reads.
  static func supportFilters(_ a: OpaquePointer) {
    archive_read_support_filter_gzip(a)
    archive_read_support_filter_bzip2(a)
    archive_read_support_filter_xz(a)
    archive_read_support_filter_lzma(a)
    archive_read_support_filter_lzip(a)
    archive_read_support_filter_zstd(a)
    archive_read_support_filter_lz4(a)
    archive_read_support_filter_compress(a)
    archive_read_support_filter_uu(a)
    archive_read_support_filter_rpm(a)
  }

  /// Registers every archive format rosepack reads.
  static func supportFormats(_ a: OpaquePointer) {
    archive_read_support_format_tar(a)
    archive_read_support_format_gnutar(a)
    archive_read_support_format_cpio(a)
    archive_read_support_format_zip(a)
    archive_read_support_format_7zip(a)
    archive_read_support_format_iso9660(a)
    archive_read_support_format_xar(a)
    archive_read_support_format_ar(a)
    archive_read_support_format_cab(a)
    archive_read_support_format_lha(a)
    archive_read_support_format_rar(a)
    archive_read_support_format_rar5(a)
    archive_read_support_format_warc(a)
  }

  /// Whether the file at `path` is in a format whose reader seeks (7-Zip keeps its index at the
  /// end): such inputs are opened by libarchive itself, which can seek, not through the read-ahead
  /// queue, which reads forward only.
  static func needsSeeking(path: String) -> Bool {
    let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var head = [UInt8](repeating: 0, count: 6)
    guard pread(fd, &head, head.count, 0) == head.count else { return false }
    return head == [0x37, 0x7A, 0xBC, 0xAF, 0x27, 0x1C]
  }
}
