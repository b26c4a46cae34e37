//go:build linux

package engine

import (
	"os"

	"github.com/strata-llm/strata/genome"
	"golang.org/x/sys/unix"
)

// openRandom opens path for reads the kernel must not extend: with
// POSIX_FADV_RANDOM a read brings in exactly the pages it asks for.
func openRandom(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "posix_fadvise(POSIX_FADV_RANDOM)", Path: path, Err: err}
	}
	return f, nil
}

// dropCached has the genome drop extent e from the page cache
// (genome.ArtifactFile.DropCached); pages mapped or locked elsewhere stay.
func (p *Prefetcher) dropCached(e genome.Extent) error { return p.af.DropCached(e) }

// readAheadBuf is the scratch buffer readAhead needs: none.
const readAheadBuf = 0

// readAhead has the genome read extent e into the page cache
// (genome.ArtifactFile.ReadAhead): its 2 MiB-aligned blocks as whole
// folios, read before it returns, so that the page-in maps each by one
// PMD; the rest queued exactly (POSIX_FADV_WILLNEED) and read while it
// returns. Nothing is copied.
func (p *Prefetcher) readAhead(e genome.Extent, _ []byte) (int64, error) {
	return e.Len, p.af.ReadAhead(e)
}
