package genome

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// mapsScanner reads /proc/self/maps into a buffer it keeps and walks its
// lines without allocating: revalidation runs before every paging
// operation, and an earlier parser that made strings of each line made up
// nearly all of the paging path's allocations (17836 per token on
// bench-moe, measured with cmd/bench -memprofile). A malformed line is an
// error naming the line, never a silent skip: the manager would otherwise
// act on the wrong addresses.
//
// The file is opened once and read again from offset 0 (pread) each
// time, which makes the kernel generate it afresh: opening it for every
// page-in cost two allocations (the path's bytes and the os.File) and an
// open and a close per fault.
type mapsScanner struct {
	buf   []byte
	f     *os.File // /proc/self/maps, nil until the first read
	reads int      // how many times it was read, for tests
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
// a maps file): adjacent VMAs of one file at contiguous offsets are one
// run whatever their permissions or flags. It stops at the first
// malformed line and returns its error.
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

// read fills the buffer with /proc/self/maps, as it is now.
func (s *mapsScanner) read() ([]byte, error) {
	s.reads++
	if s.f == nil {
		f, err := os.Open("/proc/self/maps")
		if err != nil {
			return nil, fmt.Errorf("genome: %w", err)
		}
		s.f = f
	}
	if s.buf == nil {
		s.buf = make([]byte, 64<<10)
	}
	n := 0
	for {
		if n == len(s.buf) {
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		m, err := s.f.ReadAt(s.buf[n:], int64(n))
		n += m
		if err == io.EOF || (err == nil && m == 0) {
			return s.buf[:n], nil
		}
		if err != nil {
			return nil, fmt.Errorf("genome: reading /proc/self/maps: %w", err)
		}
	}
}

// close closes the maps file, if read opened it.
func (s *mapsScanner) close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
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
