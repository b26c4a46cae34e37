#!/usr/bin/env bash
# check.sh builds ggml's CUDA backend and benchmarks Strata with it on a GPU
# machine that has nvcc and CMake but no Go toolchain: the Go binaries are
# built elsewhere with a portable -march and carried along.
#
#   kernels/cuda/check.sh BIN_DIR OUT_DIR [build|run|peer|all]
#
# The CUDA library is built from the vendored third_party/llama.cpp;
# BIN_DIR holds bench and strata built with STRATA_CPU=x86-64-v3. "build"
# only compiles (it resumes where a previous call stopped), "run"
# benchmarks, "peer" puts bin/bench beside upstream llama-bench built from
# the same tree (CPU part only, loading this ggml-cuda library through
# GGML_BACKEND_DL, so CUDA is compiled once), FA off and on; "all" does
# build, run and peer. STRATA_CUDA_BUILD sets the build folder
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
if [ "$what" = run ] || [ "$what" = all ]; then
	model=/tmp/bench-dense-q4_0.gguf
	[ -f "$model" ] || "$bin/strata" gen -preset bench-dense -type q4_0 -o "$model"
	"$bin/bench" -backend "$bdir/lib" -ngl -1 -m "$model" -t 4 -r 3 -o md | tee "$out/bench-cuda.md"
	"$bin/bench" -m "$model" -t "$(nproc)" -r 2 -n 64 -o md | tee "$out/bench-cpu.md"
fi

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
avg() { grep -o '"avg_ts": *[0-9.eE+-]*' | head -n1 | sed 's/.*: *//'; }

if [ "$what" = peer ] || [ "$what" = all ]; then
	pdir=${STRATA_PEER_BUILD:-/tmp/strata-peer}
	[ -f "$pdir/build.ninja" ] || cmake -S scripts/peer -B "$pdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
		-DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF \
		-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON >/dev/null # = x86-64-v3, like bin/bench
	cmake --build "$pdir" --target llama-bench -j "$(nproc)" 2>&1 | tail -n 2
	cp "$bdir"/lib/libggml-cuda.so* "$pdir/bin/"
	model=/tmp/bench-dense-q4_0.gguf
	[ -f "$model" ] || "$bin/strata" gen -preset bench-dense -type q4_0 -o "$model"
	{
		printf '| test | fa | llama-bench t/s | bin/bench t/s | ratio |\n| --- | ---: | ---: | ---: | ---: |\n'
		for fa in 0 1; do
			for test in pp512 tg128; do
				case $test in pp*) args=(-p 512 -n 0) ;; *) args=(-p 0 -n 128) ;; esac
				up=() us=()
				for r in 1 2 3; do
					up+=("$("$pdir/bin/llama-bench" -m "$model" -t 4 -ngl 99 -fa "$fa" -r 1 "${args[@]}" -o json 2>/dev/null | avg)")
					us+=("$("$bin/bench" -backend "$bdir/lib" -ngl -1 -m "$model" -t 4 -fa "$fa" -r 1 "${args[@]}" -o json 2>/dev/null | avg)")
				done
				u=$(printf '%s\n' "${up[@]}" | median)
				o=$(printf '%s\n' "${us[@]}" | median)
				printf '| %s | %s | %.2f | %.2f | %.3f |\n' "$test" "$fa" "$u" "$o" "$(awk -v a="$o" -v b="$u" 'BEGIN {print a/b}')"
			done
		done
	} | tee "$out/peer-cuda.md"
fi
