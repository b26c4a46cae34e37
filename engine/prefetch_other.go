//go:build !linux

package engine

import (
	"io"
	"os"

	"github.com/strata-llm/strata/genome"
)

// openRandom opens path; the read-around hint is Linux's.
func openRandom(path string) (*os.File, error) { return os.Open(path) }

// dropCached does nothing: the genome does not page on this platform.
func (p *Prefetcher) dropCached(genome.Extent) error { return nil }

// prefetchChunk is the size of one read.
const prefetchChunk = 1 << 20

// readAheadBuf is the scratch buffer readAhead reads into.
const readAheadBuf = prefetchChunk

// readAhead reads extent e of the model file into buf, chunk by chunk,
// which brings it into the page cache where there is one.
func (p *Prefetcher) readAhead(e genome.Extent, buf []byte) (int64, error) {
	var n int64
	for off := e.Off; off < e.End(); off += prefetchChunk {
		got, err := p.f.ReadAt(buf[:min(prefetchChunk, e.End()-off)], off)
		n += int64(got)
		if err != nil && err != io.EOF {
			return n, err
		}
	}
	return n, nil
}
