#!/usr/bin/env bash
# peer-bench.sh — Strata's bin/bench against upstream llama-bench, both built
# from the same third_party/llama.cpp, on the same files and threads,
# alternating runs so that load on a shared machine hits both alike. Prints
# each tool's median tokens/s per test and their ratio (Strata / upstream).
#
#   scripts/peer-bench.sh                      # bench-dense q4_0 q4_k_m q8_0
#   TYPES="q4_0" ROUNDS=5 scripts/peer-bench.sh
#   MODELS="a.gguf b.gguf" scripts/peer-bench.sh
#
# Environment: TYPES (bench-dense weight types to generate and compare),
# MODELS (files instead of generated ones), THREADS (2), ROUNDS (3, each
# one llama-bench and one bin/bench run per test), TESTS ("pp512 tg128"),
# FA (0 or 1: flash attention for both), PEER_EXTRA / STRATA_EXTRA (more
# flags for one side, e.g. STRATA_EXTRA="-t 1"). build/peer is a CPU
# build: GPU side by side is kernels/cuda/check.sh's peer step.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
threads=${THREADS:-2} rounds=${ROUNDS:-3} fa=${FA:-0}
tests=${TESTS:-pp512 tg128}
models=${STRATA_MODELS:-models}
log() { printf 'peer-bench: %s\n' "$*" >&2; }

./build.sh build >&2
[ -x build/peer/bin/llama-bench ] || ./build.sh peers llama-bench >&2

files=()
if [ -n "${MODELS:-}" ]; then
	read -r -a files <<<"$MODELS"
else
	mkdir -p "$models"
	for t in ${TYPES:-q4_0 q4_k_m q8_0}; do
		f=$models/bench-dense-$t.gguf
		[ -f "$f" ] || { log "generating $f"; bin/strata gen -preset bench-dense -type "$t" -o "$f" >&2; }
		files+=("$f")
	done
fi

avg() { grep -o '"avg_ts": *[0-9.eE+-]*' | head -n1 | sed 's/.*: *//'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }

printf '| model | test | threads | fa | llama-bench t/s | bin/bench t/s | ratio |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n'
for f in "${files[@]}"; do
	for test in $tests; do
		case $test in
		pp*) args=(-p "${test#pp}" -n 0) ;;
		tg*) args=(-p 0 -n "${test#tg}") ;;
		*) log "unknown test $test (ppN or tgN)"; exit 2 ;;
		esac
		up=() us=()
		for ((r = 1; r <= rounds; r++)); do
			# shellcheck disable=SC2086
			up+=("$(build/peer/bin/llama-bench -m "$f" -t "$threads" -fa "$fa" -r 1 "${args[@]}" -o json ${PEER_EXTRA:-} 2>/dev/null | avg)")
			# shellcheck disable=SC2086
			us+=("$(bin/bench -m "$f" -t "$threads" -fa "$fa" -r 1 "${args[@]}" -o json ${STRATA_EXTRA:-} 2>/dev/null | avg)")
			log "$(basename "$f") $test round $r: llama-bench ${up[-1]}, bin/bench ${us[-1]}"
		done
		u=$(printf '%s\n' "${up[@]}" | median)
		s=$(printf '%s\n' "${us[@]}" | median)
		printf '| %s | %s | %s | %s | %.2f | %.2f | %.3f |\n' "$(basename "$f")" "$test" "$threads" "$fa" "$u" "$s" "$(awk -v a="$s" -v b="$u" 'BEGIN {print a/b}')"
	done
done
