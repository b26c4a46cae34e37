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
if [ -d /sys/fs/cgroup/memory ]; then
	cg=/sys/fs/cgroup/memory/$name
	mkdir "$cg"
	echo "$limit" >"$cg/memory.limit_in_bytes"
else
	cg=/sys/fs/cgroup/$name
	mkdir "$cg"
	echo "$limit" >"$cg/memory.max"
fi
cleanup() { rmdir "$cg" 2>/dev/null || true; }
trap cleanup EXIT
sync
echo 3 >/proc/sys/vm/drop_caches
echo "memlimit.sh: running in $cg with a limit of $limit" >&2
# The subshell joins the cgroup, then becomes the command.
(echo $BASHPID >"$cg/cgroup.procs" && exec "$@")
