//go:build linux

package genome

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// madvPopulateRead is MADV_POPULATE_READ (Linux 5.14): fault the range in
// synchronously, reading from disk as needed, without locking it.
const madvPopulateRead = unix.MADV_POPULATE_READ

// mapFile maps size bytes of f read-only and MAP_SHARED, the way llama.cpp
// maps a GGUF, so the mapping shares page-cache pages with every other
// mapping of the file.
func mapFile(f *os.File, size int64) ([]byte, error) {
	if int64(int(size)) != size {
		return nil, fmt.Errorf("genome: mmap %s: size %d too large", f.Name(), size)
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, &SyscallError{Op: "mmap " + f.Name(), Len: size, Err: err}
	}
	return b, nil
}

func unmapFile(b []byte) error {
	if err := unix.Munmap(b); err != nil {
		return &SyscallError{Op: "munmap", Len: int64(len(b)), Err: err}
	}
	return nil
}

// poisonMapping replaces the mapping b in place (MAP_FIXED, in one step,
// so no other mmap can take the range in between) with an anonymous,
// read-only, private mapping: the file is no longer mapped, slices into b
// read zeros instead of faulting, and the range stays reserved, so they
// can never read memory mapped there later. Reading it maps the kernel's
// shared zero page; it costs address space, not memory.
func poisonMapping(b []byte) error {
	_, err := unix.MmapPtr(-1, 0, unsafe.Pointer(unsafe.SliceData(b)), uintptr(alignUp(int64(len(b)))),
		unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED)
	if err != nil {
		return &SyscallError{Op: "mmap(MAP_FIXED) over a closed mapping", Addr: sliceAddr(b), Len: int64(len(b)), Err: err}
	}
	return nil
}

func sliceAddr(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

// The memory calls take addresses, not slices, because the genome also acts
// on mappings it did not make (llama.cpp's) and has no Go slice for.

func sysMlock(addr uintptr, n int64) error {
	if _, _, e := unix.Syscall(unix.SYS_MLOCK, addr, uintptr(n), 0); e != 0 {
		return &SyscallError{Op: "mlock", Addr: addr, Len: n, Err: e}
	}
	return nil
}

func sysMunlock(addr uintptr, n int64) error {
	if _, _, e := unix.Syscall(unix.SYS_MUNLOCK, addr, uintptr(n), 0); e != 0 {
		return &SyscallError{Op: "munlock", Addr: addr, Len: n, Err: e}
	}
	return nil
}

func sysMadvise(addr uintptr, n int64, advice int, name string) error {
	if _, _, e := unix.Syscall(unix.SYS_MADVISE, addr, uintptr(n), uintptr(advice)); e != 0 {
		return &SyscallError{Op: "madvise(" + name + ")", Addr: addr, Len: n, Err: e}
	}
	return nil
}

func sysPopulate(addr uintptr, n int64) error {
	return sysMadvise(addr, n, madvPopulateRead, "MADV_POPULATE_READ")
}

func sysDontNeed(addr uintptr, n int64) error {
	return sysMadvise(addr, n, unix.MADV_DONTNEED, "MADV_DONTNEED")
}

func sysFadviseDontNeed(f *os.File, off, n int64) error {
	if err := unix.Fadvise(int(f.Fd()), off, n, unix.FADV_DONTNEED); err != nil {
		return &SyscallError{Op: "posix_fadvise(POSIX_FADV_DONTNEED) " + f.Name(), Addr: uintptr(off), Len: n, Err: err}
	}
	return nil
}

// sysWriteBack writes back the dirty pages of [off, off+n) of f and waits
// for it: POSIX_FADV_DONTNEED only starts the writeback and drops no dirty
// page or page under writeback, so without this a file written moments
// ago stays cached however often it is evicted. On a clean range it only
// looks up the page cache's dirty and writeback marks.
func sysWriteBack(f *os.File, off, n int64) error {
	const flags = unix.SYNC_FILE_RANGE_WAIT_BEFORE | unix.SYNC_FILE_RANGE_WRITE | unix.SYNC_FILE_RANGE_WAIT_AFTER
	if err := unix.SyncFileRange(int(f.Fd()), off, n, flags); err != nil {
		return &SyscallError{Op: "sync_file_range " + f.Name(), Addr: uintptr(off), Len: n, Err: err}
	}
	return nil
}

// pmdSizeFile holds the size of a PMD-mapped huge page.
const pmdSizeFile = "/sys/kernel/mm/transparent_hugepage/hpage_pmd_size"

// largestFolio returns the most bytes one folio of the page cache may
// hold: 2^MAX_PAGECACHE_ORDER pages, which is the PMD size (2 MiB with
// 4 KiB pages) where transparent huge pages are built in, at most 2^11
// pages (the xarray's limit, 128 MiB with 64 KiB pages), and less without
// THP. When the PMD size cannot be read, 2 MiB is assumed: a bound too
// large only costs a longer page-cache walk.
func largestFolio() int64 {
	n := int64(2 << 20)
	if v := pmdSize(); v > 0 && v&(v-1) == 0 {
		n = v
	}
	return max(min(n, int64(pageSize)<<11), int64(pageSize))
}

func sysFadviseWillNeed(f *os.File, off, n int64) error {
	return unix.Fadvise(int(f.Fd()), off, n, unix.FADV_WILLNEED)
}

// sysRandom turns off the kernel's read-around for faults in the range
// (MADV_RANDOM).
func sysRandom(addr uintptr, n int64) error {
	return sysMadvise(addr, n, unix.MADV_RANDOM, "MADV_RANDOM")
}

// hugeFaultReads reports whether this kernel reads a whole aligned PMD
// block on a fault in a MADV_HUGEPAGE file mapping even under
// MADV_RANDOM: Linux 5.18 put that case before the MADV_RANDOM check in
// do_sync_mmap_readahead. Before it such a fault reads one page, and
// hugeBlocks would turn a page-in into thousands of 4 KiB reads.
// The block such a fault reads is the PMD size, so it must be the
// largest folio too: with 64 KiB pages (arm64) the PMD is 512 MiB, beyond
// the page cache's largest folio, and the kernel either reads far past
// the extent or (6.10 on) falls back to one page a fault.
var hugeFaultReads = func() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	return kernelAtLeast(unix.ByteSliceToString(u.Release[:]), 5, 18) && pmdSize() == maxFolio
}()

// pmdSize returns the transparent huge page size the kernel reports, or 0.
func pmdSize() int64 {
	b, err := os.ReadFile(pmdSizeFile)
	if err != nil {
		return 0
	}
	v, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0
	}
	return v
}

// kernelAtLeast reports whether release (uname -r, e.g. "6.18.0-1-amd64")
// is at least major.minor; false when it cannot be read.
func kernelAtLeast(release string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(release, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}

// sysHugePage asks for transparent huge pages on the range
// (MADV_HUGEPAGE); it fails where THP is not built in.
func sysHugePage(addr uintptr, n int64) error {
	return sysMadvise(addr, n, unix.MADV_HUGEPAGE, "MADV_HUGEPAGE")
}

// sysNormal restores the kernel's default read-around (MADV_NORMAL).
func sysNormal(addr uintptr, n int64) error {
	return sysMadvise(addr, n, unix.MADV_NORMAL, "MADV_NORMAL")
}

// openRandom opens path for reads the kernel must not extend: with
// POSIX_FADV_RANDOM a read brings in exactly the pages it asks for.
func openRandom(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("genome: %w", err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
		f.Close()
		return nil, &SyscallError{Op: "posix_fadvise(POSIX_FADV_RANDOM) " + path, Err: err}
	}
	return f, nil
}

// mincoreChunk is how many OS pages one mincore call covers; the vector
// lives on the stack so measuring residency does not allocate.
const mincoreChunk = 2048

// sysResident returns how many bytes of the page-aligned range
// [addr, addr+n) mincore reports resident. For a shared file mapping the
// kernel answers from the page cache, so this is the file's residency, not
// only this mapping's.
func sysResident(addr uintptr, n int64) (int64, error) {
	var vec [mincoreChunk]byte
	ps := int64(pageSize)
	var res int64
	for n > 0 {
		pages := (n + ps - 1) / ps
		if pages > mincoreChunk {
			pages = mincoreChunk
		}
		ln := pages * ps
		if ln > n {
			ln = n
		}
		if _, _, e := unix.Syscall(unix.SYS_MINCORE, addr, uintptr(ln), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			return 0, &SyscallError{Op: "mincore", Addr: addr, Len: ln, Err: e}
		}
		for _, v := range vec[:pages] {
			if v&1 != 0 {
				res += ps
			}
		}
		addr += uintptr(ln)
		n -= ln
	}
	return res, nil
}

// fileID returns the device numbers and inode /proc/self/maps shows for f.
func fileID(f *os.File) (major, minor uint32, inode uint64, err error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, 0, 0, fmt.Errorf("genome: stat %s: %w", f.Name(), err)
	}
	return unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino, nil
}

// memlockNow returns memlockAllowance for this process: RLIMIT_MEMLOCK,
// CapEff and VmLck, read now.
func memlockNow() (int64, bool, error) {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &rl); err != nil {
		return 0, false, &SyscallError{Op: "getrlimit(RLIMIT_MEMLOCK)", Err: err}
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false, fmt.Errorf("genome: %w", err)
	}
	capEff, err := parseStatusHex(status, "CapEff:")
	if err != nil {
		return 0, false, err
	}
	locked, err := parseStatusKB(status, "VmLck:")
	if err != nil {
		return 0, false, err
	}
	n, limited := memlockAllowance(rl.Cur, capEff, locked)
	return n, limited, nil
}

// vmLocked returns VmLck of this process from /proc/self/status, in bytes.
func vmLocked() (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("genome: %w", err)
	}
	return parseStatusKB(b, "VmLck:")
}
