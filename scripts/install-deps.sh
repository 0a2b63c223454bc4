#!/usr/bin/env bash
# Installs the Debian packages rosepack builds against and its tests check with (idempotent).
set -euo pipefail
pkgs=(
  # build: C libraries (debug builds link the shared objects; the release executable links the static
  # archives, libarchive's dependencies with it: Package.swift, cLibrary)
  pkg-config libarchive-dev libzstd-dev nettle-dev liblzma-dev libbz2-dev zlib1g-dev
  liblz4-dev libacl1-dev libxml2-dev libicu-dev
  # tests: independent tools that check our outputs and make test inputs
  libarchive-tools tar cpio zip unzip xz-utils bzip2 lz4 zstd gzip acl attr python3
  gdisk fdisk bmap-tools android-sdk-libsparse-utils dosfstools mtools strace
  # conformance: rosepack build --definitions against systemd-repart (252 in Debian 12)
  systemd
  # rosepack mount: libfuse3 to build, fuse3 (fusermount3) to run; fio and stress-ng test the mount
  libfuse3-dev fuse3 fio stress-ng
  # rosepack map: the HTML is checked in a real headless browser; heat benchmark: ext4 and btrfs tools
  chromium e2fsprogs btrfs-progs
  # Format=ext4/xfs/btrfs/erofs/squashfs/f2fs/swap: each filesystem's own tool, run in fakeroot
  fakeroot xfsprogs erofs-utils squashfs-tools f2fs-tools util-linux
  # MBR/hybrid tables are compared with genimage's; verity sets need veritysetup and openssl;
  # signature wiping is checked with blkid and losetup (util-linux) after bmaptool/simg2img
  genimage cryptsetup-bin openssl util-linux
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
