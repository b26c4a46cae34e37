//go:build !linux

package engine

import (
	"io"
	"os"
)

// openRandom opens path; the read-around hint is Linux's.
func openRandom(path string) (*os.File, error) { return os.Open(path) }

// dropCached does nothing: the genome does not page on this platform.
func dropCached(f *os.File, off, n int64) error { return nil }

// readAheadBuf is the scratch buffer readAhead reads into.
const readAheadBuf = prefetchChunk

// readAhead reads [off, off+n) of f into buf, which brings it into the
// page cache where there is one.
func readAhead(f *os.File, off, n int64, buf []byte) (int64, error) {
	got, err := f.ReadAt(buf[:n], off)
	if err == io.EOF {
		err = nil
	}
	return int64(got), err
}
