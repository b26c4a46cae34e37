package genome

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestMemoryLimit reads limits from fake /proc and /sys/fs/cgroup trees:
// the tightest of the cgroup's and its ancestors' limits, v1 and v2, and
// MemTotal when it is lower or no cgroup limits the process.
func TestMemoryLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, s string) string {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	meminfo := write("meminfo", "MemTotal:       25165824 kB\nMemFree:        1000 kB\n")
	small := write("meminfo-small", "MemTotal:       1048576 kB\n")
	root := filepath.Join(dir, "sys")
	write("sys/memory/memory.limit_in_bytes", "9223372036854771712\n") // v1: none
	write("sys/memory/outer/memory.limit_in_bytes", "3221225472\n")
	write("sys/memory/outer/inner/memory.limit_in_bytes", "9223372036854771712\n")
	write("sys/memory/tight/memory.limit_in_bytes", "2147483648\n")
	write("sys/svc/memory.max", "1610612736\n")
	write("sys/unlimited/memory.max", "max\n")
	v1 := write("cg-v1", "12:pids:/\n9:cpu,memory:/outer/inner\n1:name=systemd:/\n")
	v1tight := write("cg-v1-tight", "9:memory:/tight\n")
	v2 := write("cg-v2", "0::/svc\n")
	v2none := write("cg-v2-none", "0::/unlimited\n")
	for _, tc := range []struct {
		name, cgroup, meminfo string
		want                  int64
		where                 string
	}{
		{"v1, the parent's limit", v1, meminfo, 3 << 30, "cgroup /outer"},
		{"v1", v1tight, meminfo, 2 << 30, "cgroup /tight"},
		{"v2", v2, meminfo, 3 << 29, "cgroup /svc"},
		{"v2 max", v2none, meminfo, 24 << 30, "MemTotal"},
		{"no cgroup file", filepath.Join(dir, "missing"), meminfo, 24 << 30, "MemTotal"},
		{"machine smaller than the cgroup", v1, small, 1 << 30, "MemTotal"},
	} {
		got, where, err := memoryLimit(tc.cgroup, root, tc.meminfo)
		if err != nil || got != tc.want || where != tc.where {
			t.Errorf("%s: got %d (%s), %v; want %d (%s)", tc.name, got, where, err, tc.want, tc.where)
		}
	}
	if _, _, err := memoryLimit(v1, root, filepath.Join(dir, "missing")); !errors.Is(err, ErrUnsupported) {
		t.Errorf("no meminfo: got %v, want ErrUnsupported", err)
	}
	if _, _, err := memoryLimit(v1, root, write("bad", "MemTotal: lots kB\n")); err == nil {
		t.Error("bad MemTotal: got no error")
	}
	// This process: some limit, and some anonymous memory.
	if n, where, err := MemoryLimit(); err != nil || n <= 0 || where == "" {
		t.Errorf("MemoryLimit: got %d (%q), %v", n, where, err)
	}
	if n, err := AnonymousMemory(); err != nil || n <= 0 {
		t.Errorf("AnonymousMemory: got %d, %v", n, err)
	}
}
