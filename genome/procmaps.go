package genome

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
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

// mapsScanner reads /proc/self/maps into a buffer it keeps and walks its
// lines without allocating: revalidation runs before every paging
// operation, and parsing the text into strings each time made up nearly
// all of the paging path's allocations (bufio.Scanner.Text, measured with
// cmd/bench -memprofile on bench-moe).
type mapsScanner struct {
	buf []byte
}

// fileRun is a run of adjacent VMAs mapping one file at contiguous
// offsets (mlock and madvise split one mapping into several VMAs).
type fileRun struct {
	start, end uintptr
	off        int64
	maj, min   uint32
	ino        uint64
}

// runs calls fn for each run of file-backed VMAs in text (the contents of
// a maps file), merged as mergeFileMappings merges them but ignoring
// permissions. It stops at the first malformed line and returns its error.
func (s *mapsScanner) runs(text []byte, fn func(fileRun)) error {
	var cur fileRun
	have := false
	for n := 1; len(text) > 0; n++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if len(line) == 0 {
			continue
		}
		r, ok := parseMapsRun(line)
		if !ok {
			return fmt.Errorf("genome: /proc maps line %d: malformed %q", n, line)
		}
		if r.ino == 0 {
			continue // anonymous or special mapping
		}
		if have && cur.end == r.start && cur.ino == r.ino && cur.maj == r.maj && cur.min == r.min &&
			cur.off+int64(cur.end-cur.start) == r.off {
			cur.end = r.end
			continue
		}
		if have {
			fn(cur)
		}
		cur, have = r, true
	}
	if have {
		fn(cur)
	}
	return nil
}

// read fills the buffer with /proc/self/maps.
func (s *mapsScanner) read() ([]byte, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, fmt.Errorf("genome: %w", err)
	}
	defer f.Close()
	if s.buf == nil {
		s.buf = make([]byte, 64<<10)
	}
	n := 0
	for {
		if n == len(s.buf) {
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		m, err := f.Read(s.buf[n:])
		n += m
		if err == io.EOF || (err == nil && m == 0) {
			return s.buf[:n], nil
		}
		if err != nil {
			return nil, fmt.Errorf("genome: reading /proc/self/maps: %w", err)
		}
	}
}

// parseMapsRun parses "start-end perms offset maj:min inode [path]" from a
// maps line without allocating.
func parseMapsRun(line []byte) (fileRun, bool) {
	var r fileRun
	field := func() []byte {
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			line = line[1:]
		}
		i := 0
		for i < len(line) && line[i] != ' ' && line[i] != '\t' {
			i++
		}
		f := line[:i]
		line = line[i:]
		return f
	}
	addr := field()
	dash := bytes.IndexByte(addr, '-')
	if dash < 0 {
		return r, false
	}
	a, ok1 := parseHex(addr[:dash])
	b, ok2 := parseHex(addr[dash+1:])
	if !ok1 || !ok2 || b < a {
		return r, false
	}
	r.start, r.end = uintptr(a), uintptr(b)
	if len(field()) == 0 { // perms
		return r, false
	}
	off, ok := parseHex(field())
	if !ok || off > 1<<62 {
		return r, false
	}
	r.off = int64(off)
	dev := field()
	colon := bytes.IndexByte(dev, ':')
	if colon < 0 {
		return r, false
	}
	mj, ok1 := parseHex(dev[:colon])
	mn, ok2 := parseHex(dev[colon+1:])
	if !ok1 || !ok2 || mj > 1<<32-1 || mn > 1<<32-1 {
		return r, false
	}
	r.maj, r.min = uint32(mj), uint32(mn)
	ino := field()
	if len(ino) == 0 {
		return r, false
	}
	for _, c := range ino {
		if c < '0' || c > '9' || r.ino > (1<<64-1)/10-1 {
			return r, false
		}
		r.ino = r.ino*10 + uint64(c-'0')
	}
	return r, true
}

func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}
