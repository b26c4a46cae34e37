package genome

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// procMapping is one line of /proc/<pid>/maps.
type procMapping struct {
	Start, End uintptr
	Perms      string
	Offset     int64
	DevMajor   uint32
	DevMinor   uint32
	Inode      uint64
	Path       string
}

// parseProcMaps parses the text of /proc/<pid>/maps. A malformed line is an
// error naming the line, never a silent skip: the manager would otherwise
// act on the wrong addresses.
func parseProcMaps(r io.Reader) ([]procMapping, error) {
	var out []procMapping
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}
		pm, err := parseProcMapsLine(line)
		if err != nil {
			return nil, fmt.Errorf("genome: /proc maps line %d: %w", n, err)
		}
		out = append(out, pm)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("genome: reading /proc maps: %w", err)
	}
	return out, nil
}

// parseProcMapsLine parses "start-end perms offset maj:min inode   path".
func parseProcMapsLine(line string) (procMapping, error) {
	var pm procMapping
	f := line
	next := func() (string, bool) {
		f = strings.TrimLeft(f, " \t")
		if f == "" {
			return "", false
		}
		i := strings.IndexAny(f, " \t")
		if i < 0 {
			s := f
			f = ""
			return s, true
		}
		s := f[:i]
		f = f[i:]
		return s, true
	}
	field := func(name string) (string, error) {
		s, ok := next()
		if !ok {
			return "", fmt.Errorf("missing %s field", name)
		}
		return s, nil
	}
	s, err := field("address")
	if err != nil {
		return pm, err
	}
	lo, hi, ok := strings.Cut(s, "-")
	if !ok {
		return pm, fmt.Errorf("address %q: no '-'", s)
	}
	a, err := strconv.ParseUint(lo, 16, 64)
	if err != nil {
		return pm, fmt.Errorf("address %q: %w", s, err)
	}
	b, err := strconv.ParseUint(hi, 16, 64)
	if err != nil {
		return pm, fmt.Errorf("address %q: %w", s, err)
	}
	if b < a {
		return pm, fmt.Errorf("address %q: end before start", s)
	}
	pm.Start, pm.End = uintptr(a), uintptr(b)
	if pm.Perms, err = field("perms"); err != nil {
		return pm, err
	}
	if s, err = field("offset"); err != nil {
		return pm, err
	}
	off, err := strconv.ParseUint(s, 16, 63)
	if err != nil {
		return pm, fmt.Errorf("offset %q: %w", s, err)
	}
	pm.Offset = int64(off)
	if s, err = field("dev"); err != nil {
		return pm, err
	}
	maj, min, ok := strings.Cut(s, ":")
	if !ok {
		return pm, fmt.Errorf("dev %q: no ':'", s)
	}
	mj, err := strconv.ParseUint(maj, 16, 32)
	if err != nil {
		return pm, fmt.Errorf("dev %q: %w", s, err)
	}
	mn, err := strconv.ParseUint(min, 16, 32)
	if err != nil {
		return pm, fmt.Errorf("dev %q: %w", s, err)
	}
	pm.DevMajor, pm.DevMinor = uint32(mj), uint32(mn)
	if s, err = field("inode"); err != nil {
		return pm, err
	}
	if pm.Inode, err = strconv.ParseUint(s, 10, 64); err != nil {
		return pm, fmt.Errorf("inode %q: %w", s, err)
	}
	pm.Path = strings.TrimLeft(f, " \t")
	return pm, nil
}

// mergeFileMappings joins adjacent entries that map consecutive bytes of the
// same file. mlock and madvise split one mapping into several VMAs (one per
// distinct flag set); they are still one mapping of the file.
func mergeFileMappings(in []procMapping) []procMapping {
	var out []procMapping
	for _, pm := range in {
		if n := len(out); n > 0 {
			last := &out[n-1]
			if last.End == pm.Start && last.Inode == pm.Inode && last.DevMajor == pm.DevMajor &&
				last.DevMinor == pm.DevMinor && last.Perms == pm.Perms &&
				last.Offset+int64(last.End-last.Start) == pm.Offset {
				last.End = pm.End
				continue
			}
		}
		out = append(out, pm)
	}
	return out
}
