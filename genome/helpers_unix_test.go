//go:build unix

package genome

import (
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// alignedForeignMap maps p like foreignMap, without MAP_POPULATE, at an
// address aligned to maxFolio, so that the kernel may map whole folios of
// it with one PMD each.
func alignedForeignMap(tb testing.TB, p string, size int) []byte {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	span := size + int(maxFolio)
	res, err := unix.Mmap(-1, 0, span, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Munmap(res) })
	skip := int((sliceAddr(res)+uintptr(maxFolio)-1)&^(uintptr(maxFolio)-1) - sliceAddr(res))
	ptr, err := unix.MmapPtr(int(f.Fd()), 0, unsafe.Pointer(&res[skip]), uintptr(size), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_FIXED)
	if err != nil {
		tb.Fatal(err)
	}
	return unsafe.Slice((*byte)(ptr), size)
}
