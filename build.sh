#!/usr/bin/env bash
# build.sh — Strata's build driver. The Makefile calls it; so can you.
#
#   ./build.sh deps      install missing system packages, download Go modules
#   ./build.sh build     deps + build every binary into bin/ (CPU)
#   ./build.sh test      build + vet, staticcheck, race tests of pure-Go
#                        packages, then the cgo tests on generated models
#   ./build.sh bench     build + generate the default model if missing, run
#                        cmd/bench on it
#   ./build.sh cuda      CMake build of ggml's CUDA backend (needs nvcc)
#   ./build.sh peers     CMake build of upstream llama-bench and llama-server
#                        from third_party/llama.cpp into build/peer/bin
#   ./build.sh peer-bench  bin/bench against llama-bench (scripts/peer-bench.sh)
#   ./build.sh env       print the cgo environment as shell exports
#   ./build.sh clean     remove bin/ and build/
#
# Environment:
#   STRATA_CPU      -march value for llama.cpp's CPU code (default: native;
#                   e.g. x86-64-v3 for a portable AVX2 build)
#   STRATA_CFLAGS   extra C/C++ flags for the cgo build
#   STRATA_MODELS   where generated models go (default: models/)
#   BENCH_PRESET    model preset for `bench` (default: bench-dense)
#   BENCH_TYPE      its weight type (default: q4_0)
#   BENCH_THREADS   threads for `bench` (default: 2)
#   CUDA_ARCHS      CMAKE_CUDA_ARCHITECTURES for `cuda` (default: native)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$root"

tp=third_party/llama.cpp

log() { printf 'build.sh: %s\n' "$*" >&2; }
die() { printf 'build.sh: error: %s\n' "$*" >&2; exit 1; }

# cgo_env exports the flags that make ggml's CPU code use the machine's SIMD
# units. cgo compiles the vendored C with no -m flags otherwise, and
# prompts then run 8.7x slower (DESIGN.md). The Go build cache keys on these
# values, so every target uses exactly the same ones.
cgo_env() {
	local cpu=${STRATA_CPU:-native}
	local flags="-O3 -march=${cpu} ${STRATA_CFLAGS:-}"
	export CGO_ENABLED=1
	export CGO_CFLAGS="${flags% }"
	export CGO_CXXFLAGS="${flags% }"
	export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
}

need_cmd() { command -v "$1" >/dev/null 2>&1; }

# apt_install installs Debian packages that are missing. It runs apt-get
# update once, only when something must be installed.
apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	need_cmd apt-get || die "missing packages ${missing[*]} and no apt-get to install them"
	local sudo=
	[ "$(id -u)" -ne 0 ] && sudo=sudo
	log "installing ${missing[*]}"
	$sudo apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

deps() {
	need_cmd go || die "go is not installed (Go 1.26 or newer is needed: https://go.dev/doc/install)"
	if ! need_cmd gcc || ! need_cmd g++; then
		apt_install gcc g++ make
	fi
	[ -f "$tp/include/llama.h" ] || die "$tp/include/llama.h is missing: the vendored llama.cpp is part of the repository (scripts/update-llama.sh reproduces it)"
	log "downloading Go modules"
	go mod download
}

build() {
	deps
	cgo_env
	log "building (CGO_CFLAGS=$CGO_CFLAGS); a cold build of llama.cpp takes a few minutes"
	mkdir -p bin
	# The commit goes in by -X, since GOFLAGS turns VCS stamping off (it
	# fails in trees copied without .git); bench reports it as llama-bench
	# reports its build_commit.
	local commit
	commit=$(git rev-parse --short=7 HEAD 2>/dev/null || true)
	go build -ldflags "-X github.com/strata-llm/strata/internal/buildinfo.commit=${commit}" -o bin/ ./cmd/...
	log "built: $(cd bin && ls | tr '\n' ' ')"
}

# Packages without cgo get the race detector, and so do the engine's (its
# scheduler, queue and prefetch readers are where Go's concurrency is;
# the C they call is not instrumented). -race builds the cgo packages a
# second time, once per machine (the Go build cache keeps it). The other
# cgo packages are tested without it.
pure_go_pkgs() {
	go list -f '{{if not .CgoFiles}}{{.ImportPath}}{{end}}' ./... | grep -v '^$' | while read -r p; do
		# A package is pure only if none of its non-standard dependencies
		# is cgo either (the standard library's net has cgo files and is
		# fine under the race detector).
		if ! go list -deps -f '{{if and .CgoFiles (not .Standard)}}cgo{{end}}' "$p" | grep -q cgo; then echo "$p"; fi
	done
}

test_all() {
	build
	log "gofmt"
	local unformatted
	unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './third_party/*'))
	[ -z "$unformatted" ] || die "gofmt would change: $unformatted"
	log "go vet"
	go vet ./...
	if ! need_cmd staticcheck && [ ! -x "$(go env GOPATH)/bin/staticcheck" ]; then
		log "installing staticcheck v0.8.2"
		go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
	fi
	log "staticcheck"
	"$(command -v staticcheck || echo "$(go env GOPATH)/bin/staticcheck")" ./...
	local pure
	pure=$(pure_go_pkgs | tr '\n' ' ')
	log "race tests: $pure"
	# shellcheck disable=SC2086
	go test -race -count=1 $pure
	local cgo
	cgo=$(go list ./... | grep -v -x -F -f <(echo "$pure" | tr ' ' '\n' | grep -v '^$') | grep -v '/engine' | tr '\n' ' ')
	log "race tests of the engine (cgo)"
	go test -race -count=1 ./engine/...
	log "cgo tests: $cgo"
	# shellcheck disable=SC2086
	go test -count=1 $cgo
}

bench() {
	build
	local models=${STRATA_MODELS:-models}
	local preset=${BENCH_PRESET:-bench-dense}
	local typ=${BENCH_TYPE:-q4_0}
	local model="$models/$preset-$typ.gguf"
	mkdir -p "$models"
	if [ ! -f "$model" ]; then
		log "generating $model (first run only)"
		bin/strata gen -preset "$preset" -type "$typ" -o "$model"
	fi
	bin/bench -m "$model" -t "${BENCH_THREADS:-2}"
}

cuda() {
	# No Go here: the CUDA library is CMake and nvcc only.
	need_cmd cmake || apt_install cmake
	need_cmd nvcc || die "nvcc not found: install the CUDA toolkit (Debian non-free: nvidia-cuda-toolkit) or put it on PATH"
	local out=build/cuda
	log "configuring ggml-cuda from $tp (CUDA_ARCHS=${CUDA_ARCHS:-native})"
	cmake -S kernels/cuda -B "$out" -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-native}"
	cmake --build "$out" --parallel "$(nproc)"
	mkdir -p bin/lib
	cp -a "$out"/lib/*.so* bin/lib/
	log "built: $(ls bin/lib | tr '\n' ' ') (load with STRATA_BACKEND_PATH=$root/bin/lib)"
}

# peers [TARGET...] builds upstream's tools (default: llama-bench and
# llama-server) from the vendored tree into build/peer/bin.
peers() {
	local targets=("$@")
	[ ${#targets[@]} -gt 0 ] || targets=(llama-bench llama-server)
	need_cmd cmake || apt_install cmake
	log "building upstream ${targets[*]} from $tp (CMake, GGML_NATIVE=ON); a few minutes once"
	cmake -S scripts/peer -B build/peer -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/peer --target "${targets[@]}" --parallel "$(nproc)" >/dev/null
	log "built: $(for t in "${targets[@]}"; do printf 'build/peer/bin/%s ' "$t"; done)"
}

clean() {
	rm -rf bin build
}

case "${1:-build}" in
deps) deps ;;
build) build ;;
test) test_all ;;
bench) bench ;;
cuda) cuda ;;
peers) shift; peers "$@" ;;
peer-bench) exec scripts/peer-bench.sh ;;
env)
	cgo_env
	printf 'export CGO_ENABLED=%q CGO_CFLAGS=%q CGO_CXXFLAGS=%q\n' "$CGO_ENABLED" "$CGO_CFLAGS" "$CGO_CXXFLAGS"
	;;
clean) clean ;;
*) die "unknown target '$1' (deps, build, test, bench, cuda, peers, peer-bench, env, clean)" ;;
esac
