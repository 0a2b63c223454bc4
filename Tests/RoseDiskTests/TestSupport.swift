import Foundation
import RoseTestSupport
import Testing

@testable import RoseDisk

struct SampleImage {
  let layout: DiskLayout
  let path: String
  let map: AllocationMap
}

func sampleSpecs(seed: String = "test-seed") throws -> [PartitionRequest] {
  [
    PartitionRequest(
      label: "esp", type: try PartitionTypes.guid(for: "esp"),
      uuid: GUID.derived(seed: seed, label: "esp"),
      size: .fixed(4 * mib)),
    PartitionRequest(
      label: "root-a", type: try PartitionTypes.guid(for: "root-x86-64"),
      uuid: GUID.derived(seed: seed, label: "root-a"),
      attributes: 1 << 59, size: .auto(min: 2 * mib), contentSize: 3 * mib + 5),
    PartitionRequest(
      label: "data", type: try PartitionTypes.guid(for: "linux-generic"),
      uuid: GUID.derived(seed: seed, label: "data"),
      size: .grow(min: mib)),
  ]
}

/// Builds a small disk image: GPT, random data at scattered extents (some not 4 KiB
/// aligned), a fill-pattern block, a zero block inside a used range, and holes.
func makeSampleImage(
  in dir: TempDir, name: String = "disk.img", sectorSize: UInt64 = 512, diskSize: UInt64? = 24 << 20
)
  throws -> SampleImage
{
  let layout = try DiskLayout.plan(
    sectorSize: sectorSize, diskSize: diskSize,
    diskGUID: GUID.derived(seed: "test-seed", label: "disk"),
    partitions: try sampleSpecs())
  let path = dir.file(name)
  let file = try RawImageOutput.create(path: path, size: layout.diskSize)
  try GPTWriter.write(layout, to: file.fd, path: path)
  var map = layout.tableMap

  func put(_ bytes: [UInt8], at offset: UInt64) throws {
    try bytes.withUnsafeBytes { raw in
      let n = pwrite(file.fd, raw.baseAddress, raw.count, off_t(offset))
      if n != raw.count { throw TestFailure("short write") }
    }
    map.insert(offset: offset, length: UInt64(bytes.count))
  }
  let esp = layout.partitions[0]
  let root = layout.partitions[1]
  let data = layout.partitions[2]
  try put(pseudoRandomBytes(count: 64 * 1024, seed: 1), at: esp.offset)
  try put(pseudoRandomBytes(count: 1 << 20, seed: 2), at: root.offset)
  try put(pseudoRandomBytes(count: 512, seed: 3), at: root.offset + 2 * mib + 512)  // partial block
  try put([UInt8](repeating: 0xA5, count: 8192), at: root.offset + 3 * mib)  // FILL pattern
  map.insert(offset: root.offset + 3 * mib + 8192, length: 4096)  // used but zero
  try put(pseudoRandomBytes(count: 12288, seed: 4), at: data.offset + 4096)
  try file.commit()
  return SampleImage(layout: layout, path: path, map: map)
}
