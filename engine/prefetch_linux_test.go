package engine

import (
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestReadAheadCachesExactly checks what the prefetch readers rely on:
// readAhead on a POSIX_FADV_RANDOM descriptor brings the asked bytes of a
// file into the page cache (asynchronously: the test waits for them) and
// nothing far from them.
func TestReadAheadCachesExactly(t *testing.T) {
	const mib = 1 << 20
	path := filepath.Join(t.TempDir(), "weights")
	data := make([]byte, 16*mib)
	rand.Read(data)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := openRandom(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := dropCached(f, 0, int64(len(data))); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, len(data), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	cached := func(off, n int) int {
		vec := make([]byte, n/os.Getpagesize())
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[off])), uintptr(n), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatal(e)
		}
		c := 0
		for _, v := range vec {
			c += int(v & 1)
		}
		return c * os.Getpagesize()
	}
	if c := cached(0, len(data)); c > len(data)/2 {
		t.Skipf("the page cache kept %d of %d bytes after POSIX_FADV_DONTNEED (a file system that cannot drop them?)", c, len(data))
	}
	buf := make([]byte, prefetchChunk)
	for off := int64(4 * mib); off < 6*mib; off += prefetchChunk {
		if _, err := readAhead(f, off, prefetchChunk, buf); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for cached(4*mib, 2*mib) < 2*mib {
		if time.Now().After(deadline) {
			t.Fatalf("after readAhead of [4, 6) MiB, %d of %d bytes cached", cached(4*mib, 2*mib), 2*mib)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := cached(10*mib, 6*mib); c > 0 {
		t.Errorf("%d bytes of [10, 16) MiB cached: readAhead read around what it was asked", c)
	}
}
