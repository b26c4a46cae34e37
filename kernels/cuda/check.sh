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
#
# A lent machine runs one command for at most 10 minutes, so nothing here
# is lost to one failure: every step writes its output and stderr into
# OUT_DIR as it goes and records its exit status in OUT_DIR/status, the
# build's full log is kept (build-*.log), and the peer step is skipped
# when fewer than STRATA_PEER_MIN_S seconds (240) remain of
# STRATA_DEADLINE_S (540) since the start.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BIN_DIR OUT_DIR [build|run|peer|all]" >&2; exit 2; }
bin=$(realpath "$1") out=$(realpath -m "$2") what=${3:-all}
cd "$(dirname "$0")/../.." || exit 2
mkdir -p "$out"
bdir=${STRATA_CUDA_BUILD:-build/cuda}
deadline=$((SECONDS + ${STRATA_DEADLINE_S:-540}))
command -v nvcc >/dev/null 2>&1 || PATH=/usr/local/cuda/bin:$PATH
log() { printf 'check.sh: %s\n' "$*" | tee -a "$out/status" >&2; }

# step NAME CMD...: runs CMD with its stdout in OUT/NAME (and on the
# terminal) and its stderr in OUT/NAME.err; records the exit status.
step() {
	local name=$1
	shift
	"$@" 2>"$out/$name.err" | tee "$out/$name"
	local rc=${PIPESTATUS[0]}
	log "$name: exit $rc"
	return "$rc"
}

# The carried binaries must run here: a -march=native build from another
# CPU would die with SIGILL only after minutes of building.
if [ "$what" != build ]; then
	if grep -aq -- '-march=native' "$bin/bench"; then
		log "$bin/bench was built with -march=native; rebuild it with STRATA_CPU=x86-64-v3 make"
		exit 2
	fi
	step version "$bin/strata" version || exit 2
fi

if [ "$what" != run ]; then
	nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$out/gpu.txt"
	nvcc --version | tail -n 2 | tee -a "$out/gpu.txt"
	archs=${CUDA_ARCHS:-}
	if [ -z "$archs" ]; then # the card's own, e.g. 9.0 -> 90-real (CMake's native needs 3.24)
		cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d ' .')
		archs=${cap:+${cap}-real}
		archs=${archs:-native}
	fi
	start=$SECONDS
	if [ ! -f "$bdir/build.ninja" ]; then
		cmake -S kernels/cuda -B "$bdir" -G Ninja -DCMAKE_CUDA_ARCHITECTURES="$archs" >"$out/build-cuda.log" 2>&1 ||
			{ tail -n 30 "$out/build-cuda.log"; log "build-cuda: configure failed"; exit 1; }
	fi
	if ! cmake --build "$bdir" -j "$(nproc)" >>"$out/build-cuda.log" 2>&1; then
		grep -m 3 -A 30 FAILED "$out/build-cuda.log" || tail -n 30 "$out/build-cuda.log"
		log "build-cuda: failed after $((SECONDS - start)) s (log: build-cuda.log)"
		exit 1
	fi
	log "build-cuda: $((SECONDS - start)) s, architectures $archs"
	ls -la "$bdir/lib" | tee -a "$out/status"
fi

model=/tmp/bench-dense-q4_0.gguf
if [ "$what" != build ] && [ ! -f "$model" ]; then
	step gen "$bin/strata" gen -preset bench-dense -type q4_0 -o "$model" || exit 1
fi

if [ "$what" = run ] || [ "$what" = all ]; then
	step bench-cuda.md "$bin/bench" -backend "$bdir/lib" -ngl -1 -m "$model" -t 4 -r 3 -o md
	step bench-cpu.md "$bin/bench" -m "$model" -t "$(nproc)" -r 2 -n 64 -o md
fi

median() { awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) exit; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
avg() { grep -o '"avg_ts": *[0-9.eE+-]*' | head -n1 | sed 's/.*: *//'; }

if [ "$what" = peer ] || [ "$what" = all ]; then
	if [ "$what" = all ] && [ $((deadline - SECONDS)) -lt "${STRATA_PEER_MIN_S:-240}" ]; then
		log "peer: skipped, $((deadline - SECONDS)) s left of the deadline; run it alone: $0 $1 $2 peer"
		exit 0
	fi
	pdir=${STRATA_PEER_BUILD:-/tmp/strata-peer}
	start=$SECONDS
	if [ ! -f "$pdir/build.ninja" ]; then
		cmake -S scripts/peer -B "$pdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
			-DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF \
			-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON >"$out/build-peer.log" 2>&1 || # = x86-64-v3, like bin/bench
			{ tail -n 30 "$out/build-peer.log"; log "build-peer: configure failed"; exit 1; }
	fi
	if ! cmake --build "$pdir" --target llama-bench -j "$(nproc)" >>"$out/build-peer.log" 2>&1; then
		grep -m 3 -A 30 FAILED "$out/build-peer.log" || tail -n 30 "$out/build-peer.log"
		log "build-peer: failed (log: build-peer.log)"
		exit 1
	fi
	log "build-peer: $((SECONDS - start)) s"
	cp "$bdir"/lib/libggml-cuda.so* "$pdir/bin/"
	# ggml loads backends silently: without this check a library that
	# failed to load would make the peer's rows CPU figures.
	if ! "$pdir/bin/llama-bench" --list-devices 2>&1 | tee "$out/peer-devices.txt" | grep -q CUDA; then
		log "peer: llama-bench sees no CUDA device (peer-devices.txt); not comparing"
		exit 1
	fi
	{
		printf '| test | fa | llama-bench t/s | bin/bench t/s | ratio |\n| --- | ---: | ---: | ---: | ---: |\n'
		for fa in 0 1; do
			for test in pp512 tg128; do
				case $test in pp*) args=(-p 512 -n 0) ;; *) args=(-p 0 -n 128) ;; esac
				up=() us=()
				for _ in 1 2 3; do
					up+=("$("$pdir/bin/llama-bench" -m "$model" -t 4 -ngl 99 -fa "$fa" -r 1 "${args[@]}" -o json 2>>"$out/peer-cuda.err" | avg)")
					us+=("$("$bin/bench" -backend "$bdir/lib" -ngl -1 -m "$model" -t 4 -fa "$fa" -r 1 "${args[@]}" -o json 2>>"$out/peer-cuda.err" | avg)")
				done
				u=$(printf '%s\n' "${up[@]}" | median)
				o=$(printf '%s\n' "${us[@]}" | median)
				if [ -z "$u" ] || [ -z "$o" ]; then
					printf '| %s | %s | %s | %s | failed (peer-cuda.err) |\n' "$test" "$fa" "${u:--}" "${o:--}"
				else
					printf '| %s | %s | %.2f | %.2f | %.3f |\n' "$test" "$fa" "$u" "$o" "$(awk -v a="$o" -v b="$u" 'BEGIN {print a/b}')"
				fi
			done
		done
	} | tee "$out/peer-cuda.md"
	log "peer: done"
fi
