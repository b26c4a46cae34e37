#!/usr/bin/env bash
# check.sh builds ggml's CUDA backend and benchmarks Strata with it on a GPU
# machine that has nvcc and CMake but no Go toolchain: the Go binaries are
# built elsewhere with a portable -march and carried along.
#
#   kernels/cuda/check.sh BIN_DIR OUT_DIR [build|run|peer|serve|all]
#
# The CUDA library is built from the vendored third_party/llama.cpp;
# BIN_DIR holds bench and strata built with STRATA_CPU=x86-64-v3 (and
# llama.test, `go test -c ./llama`, if the Go tests are to run on the GPU
# too). The steps:
#   build  compiles ggml-cuda; with "all", upstream's llama-bench and
#          llama-server (CPU part only, GGML_BACKEND_DL, loading this one
#          ggml-cuda library, so CUDA is compiled once) build beside it at
#          a lower priority. Each resumes where a previous call stopped.
#   run    bin/bench on the GPU; -list-devices and a -dev row; llama.test's
#          backend tests and its sampling benchmark (on this machine's
#          CPU); `strata run` through the engine on the GPU.
#   peer   bin/bench beside upstream llama-bench, FA off and on, three
#          alternating rounds of PEER_REPS (5) repetitions each.
#   serve  scripts/serve-bench.sh on the GPU: strata serve against
#          llama-server, one stream and four.
# "all" does them in that order. STRATA_CUDA_BUILD sets the CUDA build
# folder (default build/cuda), STRATA_PEER_BUILD the peer's (/tmp/strata-peer);
# keep both outside a carried folder.
#
# A lent machine runs one command for at most 10 minutes, so nothing here
# is lost to one failure: every step writes its output and stderr into
# OUT_DIR as it goes and records its exit status in OUT_DIR/status, the
# builds' full logs are kept (build-*.log), and under "all" the peer and
# serve steps are skipped when fewer than STRATA_PEER_MIN_S (150) and
# STRATA_SERVE_MIN_S (90) seconds remain of STRATA_DEADLINE_S (540) since
# the start; the log names the command that runs them alone.
set -uo pipefail
[ $# -ge 2 ] || { echo "usage: $0 BIN_DIR OUT_DIR [build|run|peer|serve|all]" >&2; exit 2; }
bin=$(realpath "$1") out=$(realpath -m "$2") what=${3:-all}
case $what in build | run | peer | serve | all) ;; *) echo "$0: unknown step '$what'" >&2; exit 2 ;; esac
cd "$(dirname "$0")/../.." || exit 2
mkdir -p "$out"
bdir=$(realpath -m "${STRATA_CUDA_BUILD:-build/cuda}") pdir=$(realpath -m "${STRATA_PEER_BUILD:-/tmp/strata-peer}")
deadline=$((SECONDS + ${STRATA_DEADLINE_S:-540}))
command -v nvcc >/dev/null 2>&1 || PATH=/usr/local/cuda/bin:$PATH
log() { printf 'check.sh: %s\n' "$*" | tee -a "$out/status" >&2; }
does() { [ "$what" = "$1" ] || [ "$what" = all ]; }

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

# time_for NAME MIN: under "all", whether MIN seconds remain for NAME.
time_for() {
	[ "$what" != all ] && return 0
	[ $((deadline - SECONDS)) -ge "$2" ] && return 0
	log "$1: skipped, $((deadline - SECONDS)) s left of the deadline; run it alone: $0 $1 while the machine is warm"
	return 1
}

# The carried binaries must run here: a -march=native build from another
# CPU would die with SIGILL only after minutes of building.
model=/tmp/bench-dense-q4_0.gguf
genpid=
if [ "$what" != build ]; then
	if grep -aq -- '-march=native' "$bin/bench"; then
		log "$bin/bench was built with -march=native; rebuild it with STRATA_CPU=x86-64-v3 make"
		exit 2
	fi
	step version "$bin/strata" version || exit 2
	if [ ! -f "$model" ]; then # while CUDA builds
		("$bin/strata" gen -preset bench-dense -type q4_0 -o "$model.tmp" >"$out/gen" 2>"$out/gen.err" &&
			mv "$model.tmp" "$model") &
		genpid=$!
	fi
fi

# build_peer: upstream's llama-bench and llama-server for x86-64-v3, like
# bin/bench (GGML_NATIVE cannot go with GGML_BACKEND_DL).
build_peer() {
	local start=$SECONDS
	if [ ! -f "$pdir/build.ninja" ]; then
		cmake -S scripts/peer -B "$pdir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
			-DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=ON -DGGML_NATIVE=OFF \
			-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON >"$out/build-peer.log" 2>&1 ||
			{ tail -n 30 "$out/build-peer.log" >&2; log "build-peer: configure failed"; return 1; }
	fi
	if ! cmake --build "$pdir" --target llama-bench llama-server -j "$(nproc)" >>"$out/build-peer.log" 2>&1; then
		{ grep -m 3 -A 30 FAILED "$out/build-peer.log" || tail -n 30 "$out/build-peer.log"; } >&2
		log "build-peer: failed (log: build-peer.log)"
		return 1
	fi
	log "build-peer: $((SECONDS - start)) s"
}

peerpid=
if does build; then
	nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv | tee "$out/gpu.txt"
	nvcc --version | tail -n 2 | tee -a "$out/gpu.txt"
	[ "$what" = all ] && { nice -n 10 bash -c "$(declare -f build_peer log); $(declare -p out pdir); build_peer" & peerpid=$!; }
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
[ "$what" = build ] && exit 0

if [ -n "$genpid" ]; then
	wait "$genpid" || { cat "$out/gen.err" >&2; log "gen: failed (gen.err)"; exit 1; }
	log "gen: $model"
fi

if does run; then
	# Upstream's tools compiling beside it would make these figures noise.
	if [ -n "$peerpid" ]; then
		wait "$peerpid"
		peerpid=
	fi
	step bench-cuda.md "$bin/bench" -backend "$bdir/lib" -ngl -1 -m "$model" -t 4 -r 3 -o md
	step devices.txt "$bin/bench" -backend "$bdir/lib" -list-devices
	dev=$(sed -n 's/^  \([^:]*\):.*/\1/p' "$out/devices.txt" | head -n1)
	step dev-row.csv "$bin/bench" -backend "$bdir/lib" -dev "${dev:-CUDA0}" -ngl 99 -m "$model" -t 4 -r 1 -p 64 -n 16 -o csv
	if [ -x "$bin/llama.test" ]; then
		step llama-test.txt env STRATA_BACKEND_PATH="$bdir/lib" STRATA_BENCH_MODEL="$model" "$bin/llama.test" \
			-test.run 'TestLoadBackends|TestDevices' -test.v -test.bench Sample -test.benchtime 1000x
	fi
	step strata-run.txt "$bin/strata" run -backend "$bdir/lib" -ngl -1 -m "$model" -p "The capital of France is" -n 32 -greedy
fi

median() { awk 'NF' | sort -g | awk '{a[NR]=$1} END {if (NR == 0) exit; if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
avg() { grep -o '"avg_ts": *[0-9.eE+-]*' | head -n1 | sed 's/.*: *//'; }

# peer_ready: llama-bench and llama-server built, seeing the CUDA device.
ready=
peer_ready() {
	[ -n "$ready" ] && return 0
	if [ -n "$peerpid" ]; then
		wait "$peerpid" || return 1
		peerpid=
	elif [ ! -x "$pdir/bin/llama-server" ]; then
		build_peer || return 1
	fi
	cp -a "$bdir"/lib/libggml-cuda.so* "$pdir/bin/"
	# ggml loads backends silently: without this check a library that
	# failed to load would make the peer's rows CPU figures.
	"$pdir/bin/llama-bench" --list-devices >"$out/peer-devices.txt" 2>&1
	if ! grep -q '^ *CUDA[0-9]*:' "$out/peer-devices.txt"; then
		log "peer: llama-bench sees no CUDA device (peer-devices.txt); not comparing"
		return 1
	fi
	ready=1
}

# Each run repeats its test PEER_REPS times (5): a GPU's pp512 lasts some
# 20 ms, and single runs of it spread by a factor of three. Each round's
# figures are kept in peer-rounds.txt.
reps=${PEER_REPS:-5}
if does peer && time_for peer "${STRATA_PEER_MIN_S:-150}" && peer_ready; then
	{
		printf '| test | fa | llama-bench t/s | bin/bench t/s | ratio |\n| --- | ---: | ---: | ---: | ---: |\n'
		for fa in 0 1; do
			for test in pp512 tg128; do
				case $test in pp*) args=(-p 512 -n 0) ;; *) args=(-p 0 -n 128) ;; esac
				up=() us=()
				for _ in 1 2 3; do
					up+=("$("$pdir/bin/llama-bench" -m "$model" -t 4 -ngl 99 -fa "$fa" -r "$reps" "${args[@]}" -o json 2>>"$out/peer-cuda.err" | avg)")
					us+=("$("$bin/bench" -backend "$bdir/lib" -ngl -1 -m "$model" -t 4 -fa "$fa" -r "$reps" "${args[@]}" -o json 2>>"$out/peer-cuda.err" | avg)")
				done
				echo "$test fa=$fa llama-bench: ${up[*]}; bin/bench: ${us[*]}" >>"$out/peer-rounds.txt"
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

if does serve && time_for serve "${STRATA_SERVE_MIN_S:-90}" && peer_ready; then
	step serve-cuda.md env STRATA_BIN="$bin" PEER_BIN="$pdir/bin" STRATA_BACKEND_PATH="$bdir/lib" NGL=99 \
		MODEL="$model" THREADS=4 ROUNDS=2 TMPDIR="$out" scripts/serve-bench.sh
fi
