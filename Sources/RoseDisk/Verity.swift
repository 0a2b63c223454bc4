import Foundation

/// dm-verity sets as systemd-repart builds them (`Verity=data|hash|signature`): the hash
/// partition is `veritysetup format` (format 1, sha256, 32-byte salt, superblock) over the data
/// partition's bytes, the root hash names the data partition (its first 128 bits) and the hash
/// partition (its last 128 bits), and the signature partition holds repart's JSON.
///
/// Two choices are rosepack's, for reproducible output where repart takes random values: the
/// salt and the superblock UUID derive from the image seed and the set's VerityMatchKey=. Data
/// and hash blocks are 4096 bytes (repart 253 used the sector size; 254+ default to 4096).
public enum Verity {
  public static let blockSize: UInt64 = 4096
  /// repart's VERITY_SIG_SIZE: the size a signature partition gets.
  public static let signatureSize: UInt64 = 16384

  /// Bytes `veritysetup format` writes for `dataSize` bytes of data: the 4096-byte superblock
  /// block, then every level of the sha256 tree (128 digests per block) down to one block.
  public static func hashSize(dataSize: UInt64) -> UInt64 {
    var blocks = (dataSize + blockSize - 1) / blockSize
    var total: UInt64 = 1
    let perBlock = blockSize / 32
    repeat {
      blocks = (blocks + perBlock - 1) / perBlock
      total += blocks
    } while blocks > 1
    return total * blockSize
  }

  /// The salt of a set, from the seed (HMAC-SHA256, as the other derived identifiers).
  public static func salt(seed: String, matchKey: String) -> [UInt8] {
    HMACSHA256.mac(key: Array(seed.utf8), message: Array(("verity-salt:" + matchKey).utf8))
  }

  /// The data and hash partition UUIDs of a root hash, as repart sets them.
  public static func partitionUUIDs(rootHash: [UInt8]) -> (data: GUID, hash: GUID)? {
    guard rootHash.count >= 32, let data = GUID(canonicalBytes: Array(rootHash[0..<16])),
      let hash = GUID(canonicalBytes: Array(rootHash[(rootHash.count - 16)...]))
    else { return nil }
    return (data, hash)
  }

  /// Runs `veritysetup format DATA HASH` on image files (no device mapper) and returns the
  /// root hash.
  public static func format(
    data: String, hash: String, salt: [UInt8], uuid: GUID
  ) throws -> [UInt8] {
    let arguments = [
      "format", "--hash=sha256", "--format=1", "--data-block-size=\(blockSize)",
      "--hash-block-size=\(blockSize)", "--salt=" + SHA256Stream.hex(salt),
      "--uuid=" + uuid.description, data, hash,
    ]
    let output = try ExternalTool.run("veritysetup", package: "cryptsetup-bin", arguments)
    for line in output.split(separator: "\n") where line.hasPrefix("Root hash:") {
      let hex = line.dropFirst("Root hash:".count).trimmingCharacters(in: .whitespaces)
      if let bytes = hexBytes(hex), bytes.count == 32 { return bytes }
    }
    throw DiskError.toolFailed(
      tool: "veritysetup", arguments: arguments, status: 0,
      output: "no 'Root hash:' line in: " + output)
  }

  /// repart's signature partition content: `{"rootHash":HEX,"certificateFingerprint":HEX,
  /// "signature":BASE64}` with a detached PKCS#7 (CMS) signature over the hex root hash, made by
  /// `openssl cms -sign -binary -noattr`, padded with NULs to a 4096-byte multiple.
  public static func signatureJSON(
    rootHash: [UInt8], privateKey: String, certificate: String, scratch: String
  ) throws -> [UInt8] {
    let hex = SHA256Stream.hex(rootHash)
    let input = scratch + "/roothash.txt"
    let signature = scratch + "/roothash.p7s"
    let der = scratch + "/certificate.der"
    try Data(hex.utf8).write(to: URL(fileURLWithPath: input))
    _ = try ExternalTool.run(
      "openssl", package: "openssl",
      [
        "cms", "-sign", "-binary", "-noattr", "-md", "sha256", "-in", input, "-signer",
        certificate, "-inkey", privateKey, "-outform", "DER", "-out", signature,
      ])
    _ = try ExternalTool.run(
      "openssl", package: "openssl",
      ["x509", "-in", certificate, "-outform", "DER", "-out", der])
    let signatureBytes = try Data(contentsOf: URL(fileURLWithPath: signature))
    let fingerprint = SHA256Stream.hex(
      SHA256Stream.digest(Array(try Data(contentsOf: URL(fileURLWithPath: der)))))
    let json =
      "{\"rootHash\":\"\(hex)\",\"certificateFingerprint\":\"\(fingerprint)\",\"signature\":\""
      + signatureBytes.base64EncodedString() + "\"}"
    var bytes = Array(json.utf8)
    let padded = (UInt64(bytes.count) + 4095) / 4096 * 4096
    bytes += [UInt8](repeating: 0, count: Int(padded) - bytes.count)
    return bytes
  }

  /// Writes a signature partition's content into the image.
  public static func writeSignature(_ bytes: [UInt8], to fd: Int32, at offset: UInt64, path: String)
    throws
  {
    try FileIO.write(fd, bytes, at: offset, path: path)
  }

  static func hexBytes(_ text: String) -> [UInt8]? {
    let chars = Array(text.utf8)
    guard chars.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    var i = 0
    while i < chars.count {
      guard let byte = UInt8(String(decoding: chars[i..<(i + 2)], as: UTF8.self), radix: 16)
      else { return nil }
      bytes.append(byte)
      i += 2
    }
    return bytes
  }
}

/// Runs a program found in the usual system directories and returns its standard output.
enum ExternalTool {
  static func run(_ name: String, package: String, _ arguments: [String]) throws -> String {
    let directories = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    guard
      let path = directories.map({ $0 + "/" + name }).first(where: {
        FileManager.default.isExecutableFile(atPath: $0)
      })
    else { throw DiskError.toolMissing(tool: name, debianPackage: package) }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    // Small outputs only (veritysetup, openssl): read both after exit is safe below 64 KiB.
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: outData, as: UTF8.self)
    guard process.terminationStatus == 0 else {
      throw DiskError.toolFailed(
        tool: name, arguments: arguments, status: process.terminationStatus,
        output: text + String(decoding: errData, as: UTF8.self))
    }
    return text
  }
}
