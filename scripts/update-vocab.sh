#!/usr/bin/env bash
# update-vocab.sh — reproduce modelgen/vocab/*.gguf.zst from a llama.cpp release.
#
#   scripts/update-vocab.sh                      # npm pack node-llama-cpp@$NODE_LLAMA_CPP
#   scripts/update-vocab.sh node-llama-cpp-X.tgz  # a package already downloaded
#
# llama.cpp's release carries vocabulary-only GGUFs of real tokenizers in
# models/ggml-vocab-*.gguf (its tokenizer tests load them). modelgen embeds
# a few, zstd-compressed, and copies their tokenizer.* keys into the models
# it generates. The release comes from the npm package node-llama-cpp, as in
# update-llama.sh: the script clones its git bundle, compresses the files
# named below into modelgen/vocab/ and writes modelgen/vocab/SHA256SUMS, the
# SHA-256 of each uncompressed file, which modelgen's tests check the
# embedded files against. The compressed bytes depend on the zstd version;
# the uncompressed ones do not.
#
# Environment:
#   NODE_LLAMA_CPP   npm version to fetch when no file is given (default 3.22.1)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${NODE_LLAMA_CPP:-3.22.1}
dest=$root/modelgen/vocab

# The vocabularies modelgen embeds (modelgen/vocab.go names them).
files=(
	ggml-vocab-llama-bpe.gguf
	ggml-vocab-qwen35.gguf
)

die() { printf 'update-vocab.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'update-vocab.sh: %s\n' "$*" >&2; }

for c in git tar sha256sum zstd; do command -v "$c" >/dev/null || die "$c is required"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -ge 1 ]; then
	tgz=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	[ -f "$tgz" ] || die "$1: no such file"
else
	command -v npm >/dev/null || die "npm is required to fetch node-llama-cpp@$version (or pass the .tgz)"
	log "fetching node-llama-cpp@$version"
	(cd "$work" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
	tgz=$(ls "$work"/node-llama-cpp-*.tgz)
fi

tar -xzf "$tgz" -C "$work" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json ||
	die "$tgz has no package/llama/gitRelease.bundle (not a node-llama-cpp package?)"
tag=$(sed -n 's/.*"tag"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/package/llama/llama.cpp.info.json")
git clone --quiet --no-checkout "$work/package/llama/gitRelease.bundle" "$work/src" 2>/dev/null ||
	die "cannot clone the bundle"
if [ -n "$tag" ] && git -C "$work/src" rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
	rev=$tag
else
	rev=HEAD
fi
commit=$(git -C "$work/src" rev-parse "$rev")
log "llama.cpp $tag, commit $commit"

mkdir -p "$dest"
: >"$dest/SHA256SUMS.tmp"
for f in "${files[@]}"; do
	git -C "$work/src" show "$rev:models/$f" >"$work/$f" || die "the release has no models/$f"
	zstd -q -19 -f "$work/$f" -o "$dest/$f.zst"
	(cd "$work" && sha256sum "$f") >>"$dest/SHA256SUMS.tmp"
	log "$f: $(stat -c %s "$work/$f") bytes, $(stat -c %s "$dest/$f.zst") compressed"
done
mv "$dest/SHA256SUMS.tmp" "$dest/SHA256SUMS"
log "done: update modelgen/vocab/README.md if the release ($tag, ${commit:0:8}) changed"
