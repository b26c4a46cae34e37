#!/usr/bin/env bash
# check.sh builds ggml's CUDA backend and benchmarks Strata with it on a GPU
# machine that has nvcc and CMake but no Go toolchain: the Go binaries are
# built elsewhere with a portable -march and carried along.
#
#   kernels/cuda/check.sh GGML_DIR BIN_DIR OUT_DIR [build|run|all]
#
# GGML_DIR is third_party/llama.cpp/ggml copied with links resolved
# (cp -rL); BIN_DIR holds bench and strata built with
# STRATA_CPU=x86-64-v3. "build" only compiles (it resumes where a previous
# call stopped), "run" benchmarks, "all" does both.
set -euo pipefail
ggml=$(realpath "$1") bin=$(realpath "$2") out=$3 what=${4:-all}
cd "$(dirname "$0")/../.."
mkdir -p "$out"

if [ "$what" != run ]; then
	nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
	nvcc --version | tail -n 2
	[ -f build/cuda/build.ninja ] || cmake -S kernels/cuda -B build/cuda -G Ninja \
		-DSTRATA_GGML_DIR="$ggml" -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCHS:-native}"
	start=$(date +%s)
	cmake --build build/cuda -j "$(nproc)" 2>&1 | tail -n 5
	echo "check.sh: build step took $(($(date +%s) - start)) s"
	ls -la build/cuda/lib
fi
if [ "$what" != build ]; then
	model=/tmp/bench-dense-q4_0.gguf
	[ -f "$model" ] || "$bin/strata" gen -preset bench-dense -type q4_0 -o "$model"
	"$bin/bench" -backend build/cuda/lib -ngl -1 -m "$model" -t 4 -r 3 -o md | tee "$out/bench-cuda.md"
	"$bin/bench" -m "$model" -t "$(nproc)" -r 2 -n 64 -o md | tee "$out/bench-cpu.md"
fi
