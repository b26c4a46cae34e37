package genome

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MemoryLimit returns the memory this process may use before the kernel
// reclaims its pages or kills it: the tightest memory limit of its
// cgroup and the cgroup's ancestors (v1 memory.limit_in_bytes, v2
// memory.max), or the machine's MemTotal when that is lower or no cgroup
// limits it. where names the limit ("cgroup /name" or "MemTotal"). The
// genome's budget is locked or cached memory inside this limit, beside
// the weights it does not page. On systems without /proc it returns an
// error wrapping ErrUnsupported.
func MemoryLimit() (limit int64, where string, err error) {
	return memoryLimit("/proc/self/cgroup", "/sys/fs/cgroup", "/proc/meminfo")
}

func memoryLimit(cgroupFile, cgroupRoot, meminfo string) (int64, string, error) {
	limit, where, err := memTotal(meminfo)
	if err != nil {
		return 0, "", err
	}
	raw, err := os.ReadFile(cgroupFile)
	if err != nil {
		return limit, where, nil // no cgroups: the machine's memory
	}
	for _, line := range strings.Split(string(raw), "\n") {
		// hierarchy-ID:controllers:path; v2's is 0::path.
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var dir, file string
		switch {
		case parts[0] == "0" && parts[1] == "":
			dir, file = cgroupRoot, "memory.max"
		case hasController(parts[1], "memory"):
			dir, file = filepath.Join(cgroupRoot, "memory"), "memory.limit_in_bytes"
		default:
			continue
		}
		// The path's limit and each ancestor's: the tightest binds.
		for p := filepath.Clean("/" + parts[2]); ; p = filepath.Dir(p) {
			if n, ok := readLimit(filepath.Join(dir, p, file)); ok && n < limit {
				limit, where = n, "cgroup "+p
			}
			if p == "/" {
				break
			}
		}
	}
	return limit, where, nil
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// readLimit reads a cgroup memory limit; "max" (v2) and v1's page-rounded
// 2^63-1 mean none.
func readLimit(path string) (int64, bool) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	s := strings.TrimSpace(string(raw))
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n >= 1<<62 {
		return 0, false
	}
	return n, true
}

func memTotal(meminfo string) (int64, string, error) {
	f, err := os.Open(meminfo)
	if err != nil {
		return 0, "", fmt.Errorf("genome: memory limit: %w: %w", ErrUnsupported, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := bytes.CutPrefix(sc.Bytes(), []byte("MemTotal:")); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(string(rest)), " kB"), 10, 64)
			if err != nil {
				return 0, "", fmt.Errorf("genome: memory limit: %s: bad MemTotal %q", meminfo, rest)
			}
			return kb << 10, "MemTotal", nil
		}
	}
	return 0, "", fmt.Errorf("genome: memory limit: %s has no MemTotal: %w", meminfo, ErrUnsupported)
}

// AnonymousMemory returns this process's resident anonymous memory
// (RssAnon in /proc/self/status): heaps, the KV cache, compute buffers
// and weights llama.cpp copied out of the file (repacked layouts), none
// of which the genome pages.
func AnonymousMemory() (int64, error) {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("genome: anonymous memory: %w: %w", ErrUnsupported, err)
	}
	return parseStatusKB(status, "RssAnon:")
}
