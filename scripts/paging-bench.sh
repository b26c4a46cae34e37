#!/usr/bin/env bash
# paging-bench.sh — issue 9's paging comparison in one run: an MoE model
# larger than a memory cgroup, generation from a cold page cache, upstream
# llama-bench (plain mmap, built from the same third_party/llama.cpp)
# against bin/bench with the genome paging experts within a budget. Each
# run starts from dropped caches inside its own cgroup (scripts/memlimit.sh;
# root only). Prints, per router preset, tokens/s of both, their ratio, the
# genome's hit rate beside Belady's optimum at the same bytes, and the share
# of the I/O limit (read bandwidth ÷ bytes read per token) it reached.
#
#   sudo scripts/paging-bench.sh
#   PRESETS=bench-moe LIMIT=3G BUDGET=2.5GiB scripts/paging-bench.sh
#
# Environment: PRESETS ("bench-moe bench-moe-uniform"; generated at TYPE
# into models/ when missing, about 6.3 GiB each at q8_0), TYPE (q8_0),
# LIMIT (2G, the cgroup), BUDGET (1.5GiB, issue 9's: the experts' share;
# bin/bench lowers it to what leaves the dense weights room in the cgroup,
# about 1.23 GiB for bench-moe's 444 MiB of them, and says so on stderr;
# the budget column has what it used), THREADS (2), N (16 tokens),
# REPS (3), FA (0), MODES ("plain prefetch": one bin/bench row each, the
# second with -prefetch), EXTRA (more bin/bench flags for every row).
#
# The I/O limit uses the read bandwidth bin/bench measures at its start
# (O_DIRECT, expert-sized random reads, three at a time; the "read MiB/s"
# column). On a virtual disk it varies from run to run with what the host
# caches, and the fraction with it: read it beside that column.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
presets=${PRESETS:-bench-moe bench-moe-uniform} type=${TYPE:-q8_0} limit=${LIMIT:-2G} budget=${BUDGET:-1.5GiB}
threads=${THREADS:-2} n=${N:-16} reps=${REPS:-3} fa=${FA:-0} modes=${MODES:-plain prefetch}
models=${STRATA_MODELS:-models}
log() { printf 'paging-bench: %s\n' "$*" >&2; }
[ "$(id -u)" -eq 0 ] || { log "needs root (memory cgroups, drop_caches)"; exit 1; }

./build.sh build >&2
[ -x build/peer/bin/llama-bench ] || ./build.sh peers llama-bench >&2

field() { grep -o "\"$1\": *[0-9.eE+-]*" | head -n1 | sed 's/.*: *//'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a/b; else print "-" }'; }

printf '| preset | limit | llama-bench mmap t/s | genome (-budget %s) | budget used | t/s | ratio | hit rate (in budget) | Belady | vs Belady | MiB/tok | read MiB/s | of I/O limit |\n' "$budget"
printf '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n'
for p in $presets; do
	f=$models/$p-$type.gguf
	if [ ! -f "$f" ]; then
		mkdir -p "$models"
		log "generating $f"
		bin/strata gen -preset "$p" -type "$type" -o "$f" >&2
	fi
	up=$(scripts/memlimit.sh "$limit" build/peer/bin/llama-bench -m "$f" -t "$threads" -fa "$fa" -p 0 -n "$n" -r "$reps" -o json 2>/dev/null | field avg_ts)
	log "$p: llama-bench (mmap) in $limit: $up t/s"
	for mode in $modes; do
		case $mode in
		plain) flags= ;;
		prefetch) flags=-prefetch ;;
		*) log "unknown mode $mode (want plain or prefetch)"; exit 2 ;;
		esac
		# shellcheck disable=SC2086 # flags and EXTRA are lists of flags
		js=$(scripts/memlimit.sh "$limit" bin/bench -m "$f" -t "$threads" -fa "$fa" -p 0 -n "$n" -r "$reps" -budget "$budget" $flags ${EXTRA:-} -o json 2>/dev/null)
		us=$(echo "$js" | field avg_ts)
		log "$p: bin/bench -budget $budget ($mode) in $limit: $us t/s"
		used=$(echo "$js" | field expert_budget)
		printf '| %s | %s | %.2f | %s | %.2f GiB | %.2f | %s | %.3f | %.3f | %.2f | %.0f | %.0f | %.2f |\n' "$p" "$limit" "$up" "$mode" \
			"$(awk -v b="${used:-0}" 'BEGIN { print b / 2^30 }')" "$us" "$(ratio "$us" "$up")" \
			"$(echo "$js" | field budget_hit_rate)" "$(echo "$js" | field belady_hit_rate)" "$(echo "$js" | field hit_rate_vs_belady)" \
			"$(echo "$js" | field mib_read_per_token)" "$(echo "$js" | field read_bw_mibs)" "$(echo "$js" | field io_limit_frac)"
	done
done
