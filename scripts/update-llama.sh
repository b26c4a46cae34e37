#!/usr/bin/env bash
# update-llama.sh — reproduce third_party/llama.cpp from a llama.cpp release.
#
#   scripts/update-llama.sh                      # npm pack node-llama-cpp@$NODE_LLAMA_CPP
#   scripts/update-llama.sh node-llama-cpp-X.tgz  # a package already downloaded
#
# The release comes from the npm package node-llama-cpp, which ships it as a
# git bundle (package/llama/gitRelease.bundle; package/llama/llama.cpp.info.json
# names the tag). The script clones the bundle, copies the paths Strata
# compiles or builds its peers from (below) into third_party/llama.cpp,
# applies third_party/patches/*.patch in order (each patch's header says
# why it exists), writes third_party/llama.cpp/PROVENANCE, and regenerates
# the cgo glue under llama/internal/ (one wrapper per source file, so that
# a release that adds or drops files needs nothing but this script).
#
# Nothing in third_party/llama.cpp is edited by hand: run this script again
# and `git diff --exit-code third_party llama/internal` must be empty.
#
# Environment:
#   NODE_LLAMA_CPP   npm version to fetch when no file is given (default 3.22.1)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=${NODE_LLAMA_CPP:-3.22.1}
dest=$root/third_party/llama.cpp
patches=$root/third_party/patches

die() { printf 'update-llama.sh: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'update-llama.sh: %s\n' "$*" >&2; }

for c in git tar sha256sum; do command -v "$c" >/dev/null || die "$c is required"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ $# -ge 1 ]; then
	tgz=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	[ -f "$tgz" ] || die "$1: no such file"
	package=$(basename "$tgz" .tgz)
else
	command -v npm >/dev/null || die "npm is required to fetch node-llama-cpp@$version (or pass the .tgz)"
	log "fetching node-llama-cpp@$version"
	(cd "$work" && npm pack --silent "node-llama-cpp@$version" >/dev/null)
	tgz=$(ls "$work"/node-llama-cpp-*.tgz)
	package=node-llama-cpp-$version
fi

tar -xzf "$tgz" -C "$work" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json ||
	die "$tgz has no package/llama/gitRelease.bundle (not a node-llama-cpp package?)"
bundle=$work/package/llama/gitRelease.bundle
tag=$(sed -n 's/.*"tag"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$work/package/llama/llama.cpp.info.json")
[ -n "$tag" ] || die "llama.cpp.info.json names no tag"
bundle_sha=$(sha256sum "$bundle" | cut -d' ' -f1)

git clone --quiet "$bundle" "$work/src" 2>/dev/null || die "cannot clone $bundle"
# A bundle may carry the tag or only the release's squashed commit.
if git -C "$work/src" rev-parse -q --verify "refs/tags/$tag" >/dev/null; then
	git -C "$work/src" -c advice.detachedHead=false checkout --quiet "$tag"
fi
commit=$(git -C "$work/src" rev-parse HEAD)
log "llama.cpp $tag, commit $commit"

# What Strata takes from the release: the library (include, src), ggml's
# base, CPU (every architecture), CUDA, Metal and BLAS (Accelerate) backends
# with the CMake files they need, the licenses, and what upstream's
# llama-bench and llama-server need to be built from the same tree
# (common, vendor, tools/{llama-bench,server,mtmd,ui}) as speed references.
paths=(
	LICENSE
	licenses
	CMakeLists.txt
	cmake
	include
	src
	common
	vendor
	ggml/CMakeLists.txt
	ggml/cmake
	ggml/include
	ggml/src/ggml-cpu
	ggml/src/ggml-cuda
	ggml/src/ggml-metal
	ggml/src/ggml-blas
	tools/llama-bench
	tools/server
	tools/mtmd
	tools/ui/CMakeLists.txt
	tools/ui/sources.cmake
	tools/ui/ui.cpp.in
	tools/ui/ui.h.in
	scripts/ui-assets.cmake
)
# Every path is checked before the tree is touched: a release that lacks
# one must not leave third_party/llama.cpp half deleted.
for p in "${paths[@]}"; do
	[ -e "$work/src/$p" ] || die "the release has no $p (update the path list)"
done
rm -rf "$dest"
mkdir -p "$dest/ggml/src"
for p in "${paths[@]}"; do
	mkdir -p "$dest/$(dirname "$p")"
	cp -a "$work/src/$p" "$dest/$p"
done
# ggml/src's own files (not its other backends' folders).
find "$work/src/ggml/src" -maxdepth 1 -type f -exec cp -a {} "$dest/ggml/src/" \;
# Files git does not track in the release never reach the tree.
find "$dest" -name '.git*' -prune -exec rm -rf {} +

if compgen -G "$patches/*.patch" >/dev/null; then
	for p in "$patches"/*.patch; do
		log "applying $(basename "$p")"
		git -C "$dest" apply --whitespace=nowarn -p1 "$p" || die "$(basename "$p") does not apply to $tag"
	done
fi

cat >"$dest/PROVENANCE" <<PROV
# Written by scripts/update-llama.sh; do not edit.
release: $tag
commit: $commit
package: $package (npm), package/llama/gitRelease.bundle
bundle-sha256: $bundle_sha
patches: $(cd "$patches" 2>/dev/null && ls *.patch 2>/dev/null | tr '\n' ' ' || true)
PROV

"$root/scripts/gen-cgo.sh"
log "done: $(find "$dest" -type f | wc -l) files, $(du -sh "$dest" | cut -f1)"
