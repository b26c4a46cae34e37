#!/usr/bin/env bash
# memlimit.sh runs a command inside a memory cgroup, so that paging can be
# measured the way it behaves on a machine with less memory than the model
# (root only; cgroup v1 or v2).
#
#   scripts/memlimit.sh 4G bin/bench -m models/bench-moe-q8_0.gguf -p 0 -n 32
#   scripts/memlimit.sh 4G bin/bench -m models/bench-moe-q8_0.gguf -p 0 -n 32 -budget 2.5GiB
#
# The page cache is dropped first (sync; drop_caches), so every run starts
# from disk and pays for its own reads inside the limit. Swap is not
# involved: file pages are simply reclaimed.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 LIMIT COMMAND [ARGS...]" >&2; exit 2; }
limit=$1
shift
[ "$(id -u)" -eq 0 ] || { echo "memlimit.sh: needs root to create a cgroup" >&2; exit 1; }
name=strata-memlimit-$$
# The cgroup goes when the script ends, however it ends: what still runs
# in it is killed first (a cgroup with processes cannot be removed).
cleanup() {
	[ -n "${cg:-}" ] && [ -d "$cg" ] || return 0
	if [ -f "$cg/cgroup.kill" ]; then
		echo 1 >"$cg/cgroup.kill" 2>/dev/null || true
	else
		xargs -r kill -9 <"$cg/cgroup.procs" 2>/dev/null || true
	fi
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		rmdir "$cg" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "memlimit.sh: could not remove $cg" >&2
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT
if [ -d /sys/fs/cgroup/memory ]; then
	cg=/sys/fs/cgroup/memory/$name
	mkdir "$cg"
	echo "$limit" >"$cg/memory.limit_in_bytes"
else
	cg=/sys/fs/cgroup/$name
	mkdir "$cg"
	echo "$limit" >"$cg/memory.max" || {
		echo "memlimit.sh: cannot set memory.max in $cg (is +memory in /sys/fs/cgroup/cgroup.subtree_control?)" >&2
		exit 1
	}
	echo 0 >"$cg/memory.swap.max" 2>/dev/null || true # file pages are reclaimed, nothing swapped
fi
sync
echo 3 >/proc/sys/vm/drop_caches
echo "memlimit.sh: running in $cg with a limit of $limit" >&2
# The subshell joins the cgroup, then becomes the command. It runs in the
# background so that a signal to this script reaches the traps (bash
# defers traps while a foreground child runs); the EXIT trap then kills
# what the cgroup still holds.
(echo $BASHPID >"$cg/cgroup.procs" && exec "$@") &
wait $!
