//go:build !linux

package genome

import (
	"os"
	"unsafe"
)

// On other platforms the genome compiles but does not page: every memory
// call reports ErrUnsupported. Darwin's UMA residency lives in
// kernels/metal; its mincore semantics differ and have not been measured.

const madvPopulateRead = 22

func mapFile(f *os.File, size int64) ([]byte, error) { return nil, ErrUnsupported }
func unmapFile(b []byte) error                       { return ErrUnsupported }
func poisonMapping(b []byte) error                   { return ErrUnsupported }
func sliceAddr(b []byte) uintptr                     { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
func sysMlock(addr uintptr, n int64) error           { return ErrUnsupported }
func sysMunlock(addr uintptr, n int64) error         { return ErrUnsupported }
func sysPopulate(addr uintptr, n int64) error        { return ErrUnsupported }
func sysDontNeed(addr uintptr, n int64) error        { return ErrUnsupported }
func sysFadviseDontNeed(f *os.File, off, n int64) error {
	return ErrUnsupported
}
func sysFadviseWillNeed(f *os.File, off, n int64) error { return ErrUnsupported }
func sysWriteBack(f *os.File, off, n int64) error       { return ErrUnsupported }
func largestFolio() int64                               { return int64(pageSize) }
func sysRandom(addr uintptr, n int64) error             { return ErrUnsupported }
func sysNormal(addr uintptr, n int64) error             { return ErrUnsupported }
func sysHugePage(addr uintptr, n int64) error           { return ErrUnsupported }
func openRandom(path string) (*os.File, error)          { return nil, ErrUnsupported }
func sysResident(addr uintptr, n int64) (int64, error)  { return 0, ErrUnsupported }
func fileID(f *os.File) (uint32, uint32, uint64, error) {
	return 0, 0, 0, ErrUnsupported
}
func vmLocked() (int64, error) { return 0, ErrUnsupported }

// memlockNow reports no limit: nothing is locked on these platforms.
func memlockNow() (int64, bool, error) { return 0, false, nil }

// hugeFaultReads: no whole-block faults where the genome does not page.
var hugeFaultReads = false
