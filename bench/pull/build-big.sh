#!/usr/bin/env bash
# Builds the pull benchmark's "big" image as an OCI layout in OUT_DIR (tag "latest"), shaped like
# the containerd anchor's image (see /work/shared/anchor-figures.md): 5 gzip layers, ~185 MB.
#   L1 busybox rootfs
#   L2 10,000 small text files in usr/share/small/d00..d19
#   L3 3 x 40 MiB random files (data/large{1,2,3}.bin)
#   L4 2,000 small files, a 30 MiB random blob, a symlink, a hardlink, 51 files in data/scratch
#   L5 whiteouts of data/large2.bin, data/scratch and usr/share/small/d07 (500 files),
#      a changed etc/motd and a new etc/big-release
# Deterministic: a rebuild gives the same digests.
# Usage: build-big.sh OUT_DIR
source "$(dirname "$0")/../../test/fixtures/oci-lib.sh"

out=${1:?usage: build-big.sh OUT_DIR}
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/berth-big-build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Exactly $1 files of ~$2 bytes of base64 text each in dir $3, named ${4}NNNN.txt, seeded by
# $5. One stream cut into pieces: 10,000 files without 10,000 processes.
text_files() {
  local count=$1 bytes=$2 dir=$3 prefix=$4 seed=$5
  mkdir -p "$dir"
  random_bytes "$seed" $((count * bytes * 3 / 4)) | base64 -w 76 >"$work/text"
  split -n "$count" -d -a 4 --additional-suffix=.txt "$work/text" "$dir/$prefix"
  rm -f "$work/text"
}

small_text_tree() {
  local d
  for d in $(seq -w 0 19); do text_files 500 3100 "$1/usr/share/small/d$d" f "l2-$d"; done
}

large_files() {
  mkdir -p "$1/data"
  for i in 1 2 3; do random_bytes "l3-$i" $((40 * 1024 * 1024)) >"$1/data/large$i.bin"; done
}

mixed_layer() {
  local root=$1 d f
  for d in $(seq -w 0 9); do text_files 200 1700 "$root/usr/share/extra/e$d" x "l4-$d"; done
  mkdir -p "$root/data"
  random_bytes l4-blob $((30 * 1024 * 1024)) >"$root/data/blob.bin"
  ln -s blob.bin "$root/data/blob-link"
  ln "$root/data/blob.bin" "$root/data/blob-hardlink"
  mkdir -p "$root/data/scratch"
  for f in $(seq -w 0 50); do printf 'scratch file %s\n' "$f" >"$root/data/scratch/s$f.txt"; done
}

top_layer() {
  local root=$1
  mkdir -p "$root/data" "$root/usr/share/small" "$root/etc"
  : >"$root/data/.wh.large2.bin"
  : >"$root/data/.wh.scratch"
  : >"$root/usr/share/small/.wh.d07"
  printf 'Welcome to the Berth big benchmark image.\n' >"$root/etc/motd"
  printf 'big 5\n' >"$root/etc/big-release"
}

layer=0
for filler in make_busybox_rootfs small_text_tree large_files mixed_layer top_layer; do
  layer=$((layer + 1))
  mkdir -p "$work/l$layer"
  "$filler" "$work/l$layer"
  make_layer_tar "$work/l$layer" "$work/l$layer.tar"
  rm -rf "$work/l$layer"
  add_layer "$out" "$work/l$layer.tar" gzip
  rm -f "$work/l$layer.tar"
done | write_image "$out" amd64 >"$work/manifest.json"
tag_layout "$out" "$(cat "$work/manifest.json")" latest
