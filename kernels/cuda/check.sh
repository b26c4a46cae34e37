#!/usr/bin/env bash
# check.sh builds ggml's CUDA backend and benchmarks Strata with it on a GPU
# machine that has nvcc and CMake but no Go toolchain: the Go binaries are
# built elsewhere with a portable -march and carried along.
#
#   kernels/cuda/check.sh BIN_DIR OUT_DIR [build|run|all]
#
# The CUDA library is built from the vendored third_party/llama.cpp;
# BIN_DIR holds bench and strata built with STRATA_CPU=x86-64-v3. "build"
# only compiles (it resumes where a previous call stopped), "run"
# benchmarks, "all" does both. STRATA_CUDA_BUILD sets the build folder
# (default build/cuda; keep it outside a carried folder).
set -euo pipefail
bin=$(realpath "$1") out=$2 what=${3:-all}
cd "$(dirname "$0")/../.."
mkdir -p "$out"
bdir=${STRATA_CUDA_BUILD:-build/cuda}

if [ "$what" != run ]; then
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
	nvcc --version | tail -n 2
	[ -f "$bdir/build.ninja" ] || cmake -S kernels/cuda -B "$bdir" -G Ninja \
		-DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-native}"
	start=$(date +%s)
	cmake --build "$bdir" -j "$(nproc)" 2>&1 | tail -n 5
	echo "check.sh: build step took $(($(date +%s) - start)) s"
	ls -la "$bdir/lib"
fi
if [ "$what" != build ]; then
	model=/tmp/bench-dense-q4_0.gguf
	[ -f "$model" ] || "$bin/strata" gen -preset bench-dense -type q4_0 -o "$model"
	"$bin/bench" -backend "$bdir/lib" -ngl -1 -m "$model" -t 4 -r 3 -o md | tee "$out/bench-cuda.md"
	"$bin/bench" -m "$model" -t "$(nproc)" -r 2 -n 64 -o md | tee "$out/bench-cpu.md"
fi
