//go:build linux

package engine

import (
	"os"

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

// dropCached asks the kernel to drop [off, off+n) of f from the page
// cache (POSIX_FADV_DONTNEED); pages mapped or locked elsewhere stay.
func dropCached(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED)
}

// readAheadBuf is the scratch buffer readAhead needs: none.
const readAheadBuf = 0

// readAhead queues a read of [off, off+n) of f into the page cache
// (POSIX_FADV_WILLNEED) and returns without waiting for it or copying
// the bytes anywhere. One call reads at most a readahead window (about
// 2 MiB, genome's willNeedChunk), so the caller asks chunk by chunk.
func readAhead(f *os.File, off, n int64, _ []byte) (int64, error) {
	if err := unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED); err != nil {
		return 0, err
	}
	return n, nil
}
