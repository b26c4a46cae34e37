#!/usr/bin/env bash
# serve-bench.sh — `strata serve` against upstream llama-server, both built
# from the same third_party/llama.cpp, on the same model, threads, slots
# and prompt, alternating rounds so that load on a shared machine hits both
# alike. The client for both is `strata load` (streaming /v1/completions
# with ignore_eos, so every request generates exactly TOKENS tokens).
# Also runs bin/bench's tg on the same model, the speed one stream through
# the server should keep.
#
#   scripts/serve-bench.sh
#   MODEL=models/bench-dense-q4_k_m.gguf ROUNDS=3 scripts/serve-bench.sh
#   PROMPT_WORDS=600 scripts/serve-bench.sh    # long prompts: 4 × ~620 tokens
#
# Environment: MODEL (default models/bench-dense-q4_0.gguf, generated if
# missing), THREADS (2), PARALLEL (4 slots and 4 concurrent streams),
# TOKENS (128 per request), CTX (1024 tokens per slot), ROUNDS (2), PORT
# (18080), PROMPT_WORDS (the prompt: that many words of a fixed English
# text; default strata load's one-line prompt), FA (flash attention for
# all three: off, the default, on or auto).
#
# On a GPU: NGL (layers offloaded by all three, default 0) and
# STRATA_BACKEND_PATH (the folder of libggml-cuda.so, which bin/bench and
# strata serve load; llama-server loads the one beside it). On a machine
# without Go (kernels/cuda/check.sh): STRATA_BIN, the folder of bench and
# strata built elsewhere, and PEER_BIN, the folder of a llama-server built
# already; then nothing is built.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
threads=${THREADS:-2} par=${PARALLEL:-4} tokens=${TOKENS:-128} ctx=${CTX:-1024} rounds=${ROUNDS:-2} port=${PORT:-18080}
ngl=${NGL:-0} fa=${FA:-off}
model=${MODEL:-models/bench-dense-q4_0.gguf}
bin=${STRATA_BIN:-bin} peer=${PEER_BIN:-build/peer/bin}
prompt=()
if [ -n "${PROMPT_WORDS:-}" ]; then
	prompt=(-p "$(echo "The keeper of the lighthouse on the northern cape had kept its lamp for thirty years, and in all that time no ship had been lost on the rocks below, though the sea there was the worst on the coast." |
		awk -v n="$PROMPT_WORDS" '{for (i = 0; i < n; i++) printf "%s%s", (i ? " " : ""), $(i % NF + 1); print ""}')")
fi
log() { printf 'serve-bench: %s\n' "$*" >&2; }
command -v curl >/dev/null 2>&1 || { log "needs curl (apt-get install curl) to wait for the servers"; exit 1; }

[ -n "${STRATA_BIN:-}" ] || ./build.sh build >&2
if [ ! -x "$peer/llama-server" ]; then
	[ -z "${PEER_BIN:-}" ] || { log "no llama-server in PEER_BIN=$peer"; exit 1; }
	./build.sh peers llama-server >&2
fi
if [ ! -f "$model" ]; then
	mkdir -p "$(dirname "$model")"
	log "generating $model"
	"$bin"/strata gen -preset bench-dense -type q4_0 -o "$model" >&2
fi

pid=
stop() { [ -z "$pid" ] || { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }; }
trap stop EXIT
slog=${TMPDIR:-/tmp}/strata-serve.$$.log llog=${TMPDIR:-/tmp}/llama-server.$$.log blog=${TMPDIR:-/tmp}/bench.$$.log
up() { # LOG: wait for /health
	for _ in $(seq 600); do
		curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || { log "server exited; the end of $1:"; tail -n 20 "$1" >&2; return 1; }
		sleep 0.5
	done
	log "server did not come up; the end of $1:"; tail -n 20 "$1" >&2; return 1
}
field() { grep -o "\"$1\": *[0-9.eE+-]*" | head -n1 | sed 's/.*: *//'; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }

# measure NAME: one stream (two requests in turn), then PARALLEL at once.
declare -A one agg
measure() {
	local r1 r4
	r1=$("$bin"/strata load -url "http://127.0.0.1:$port" -c 1 -n 2 -tokens "$tokens" "${prompt[@]}" -json)
	r4=$("$bin"/strata load -url "http://127.0.0.1:$port" -c "$par" -n "$par" -tokens "$tokens" "${prompt[@]}" -json)
	one[$1]+="$(echo "$r1" | field mean_stream_tokens_per_s) "
	agg[$1]+="$(echo "$r4" | field aggregate_tokens_per_s) "
	log "$1: one stream $(echo "$r1" | field mean_stream_tokens_per_s) t/s, $par streams $(echo "$r4" | field aggregate_tokens_per_s) t/s aggregate"
}

bench=()
for ((r = 1; r <= rounds; r++)); do
	bench+=("$("$bin"/bench -m "$model" -t "$threads" -ngl "$ngl" -fa "$fa" -p 0 -n "$tokens" -r 2 -o json 2>"$blog" | field avg_ts)") ||
		{ log "bin/bench failed; the end of its log:"; tail -n 20 "$blog" >&2; exit 1; }
	log "bin/bench tg$tokens round $r: ${bench[-1]} t/s"

	"$bin"/strata serve -m "$model" -t "$threads" -ngl "$ngl" -fa "$fa" -np "$par" -c "$ctx" -addr "127.0.0.1:$port" >/dev/null 2>"$slog" &
	pid=$!
	up "$slog"
	measure strata
	stop

	"$peer"/llama-server -m "$model" -t "$threads" -tb "$threads" -ngl "$ngl" -np "$par" -c $((ctx * par)) -fa "$fa" \
		--host 127.0.0.1 --port "$port" --no-webui >/dev/null 2>"$llog" &
	pid=$!
	up "$llog"
	measure llama-server
	stop
done

b=$(printf '%s\n' "${bench[@]}" | median)
s1=$(printf '%s\n' ${one[strata]} | median) s4=$(printf '%s\n' ${agg[strata]} | median)
l1=$(printf '%s\n' ${one[llama-server]} | median) l4=$(printf '%s\n' ${agg[llama-server]} | median)
printf '| %s, %s threads, %s tokens%s%s | t/s |\n| --- | ---: |\n' "$(basename "$model")" "$threads" "$tokens" "${PROMPT_WORDS:+, prompts of $PROMPT_WORDS words}" "$([ "$ngl" = 0 ] || echo ", -ngl $ngl")"
printf '| bin/bench tg%s | %.2f |\n' "$tokens" "$b"
printf '| strata serve, 1 stream | %.2f |\n| llama-server, 1 stream | %.2f |\n' "$s1" "$l1"
printf '| strata serve, %s streams (aggregate) | %.2f |\n| llama-server, %s slots (aggregate) | %.2f |\n' "$par" "$s4" "$par" "$l4"
printf '\nratios: serve 1 stream / bin/bench %s; serve %s streams / 1 stream %s; serve / llama-server: 1 stream %s, %s streams %s\n' \
	"$(ratio "$s1" "$b")" "$par" "$(ratio "$s4" "$s1")" "$(ratio "$s1" "$l1")" "$par" "$(ratio "$s4" "$l4")"
