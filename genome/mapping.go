package genome

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
)

// pageSize is the OS page size; every range the genome hands to the kernel
// is rounded out to it.
var pageSize = os.Getpagesize()

// alignDown rounds off down to a page boundary.
func alignDown(off int64) int64 { return off &^ int64(pageSize-1) }

// alignUp rounds off up to a page boundary.
func alignUp(off int64) int64 { return (off + int64(pageSize) - 1) &^ int64(pageSize-1) }

// maxFolio is the most bytes one folio of the page cache holds (a power of
// two, at least pageSize): a file is cached in naturally aligned folios of
// up to this size, and the kernel drops only whole folios.
var maxFolio = largestFolio()

// appendFolioExtents rounds each extent out to maxFolio boundaries, clamps
// it to the file's pages and merges, into out (empty; its capacity is
// reused): the window holding every folio that holds a byte of ex. Caller
// passes page-aligned extents.
func appendFolioExtents(out, ex []Extent, size int64) []Extent {
	limit := alignUp(size)
	for _, e := range ex {
		lo, hi := e.Off&^(maxFolio-1), min((e.End()+maxFolio-1)&^(maxFolio-1), limit)
		if hi > lo {
			out = append(out, Extent{Off: lo, Len: hi - lo})
		}
	}
	return mergeExtents(out)
}

// alignExtents rounds each extent out to page boundaries, clamps it to
// [0, size) rounded up, sorts and merges overlapping or touching extents.
func alignExtents(raw []Extent, size int64) []Extent {
	out := make([]Extent, 0, len(raw))
	limit := alignUp(size)
	for _, e := range raw {
		if e.Len <= 0 {
			continue
		}
		lo, hi := alignDown(e.Off), min(alignUp(e.End()), limit)
		if hi > lo {
			out = append(out, Extent{Off: lo, Len: hi - lo})
		}
	}
	return mergeExtents(out)
}

// mergeExtents sorts extents by offset and joins overlapping or adjacent ones.
func mergeExtents(ex []Extent) []Extent {
	slices.SortFunc(ex, func(a, b Extent) int { return int(min(max(a.Off-b.Off, -1), 1)) })
	out := ex[:0]
	for _, e := range ex {
		if n := len(out); n > 0 && e.Off <= out[n-1].End() {
			if e.End() > out[n-1].End() {
				out[n-1].Len = e.End() - out[n-1].Off
			}
			continue
		}
		out = append(out, e)
	}
	return out
}

// subtractExtents returns the parts of a (sorted, merged) not covered by any
// extent in cut. It is how the genome releases only the bytes no other page
// still needs: mlock and the page cache do not count references per page.
func subtractExtents(a []Extent, cut []Extent) []Extent {
	if len(cut) == 0 {
		return a
	}
	return appendSubtracted(nil, a, mergeExtents(slices.Clone(cut)))
}

// appendSubtracted appends to out the parts of a (sorted, merged) that no
// extent of cut (sorted, merged) covers. It allocates only to grow out.
func appendSubtracted(out, a, cut []Extent) []Extent {
	for _, e := range a {
		lo, hi := e.Off, e.End()
		for _, c := range cut {
			if c.End() <= lo || c.Off >= hi {
				continue
			}
			if c.Off > lo {
				out = append(out, Extent{Off: lo, Len: c.Off - lo})
			}
			lo = max(lo, c.End())
			if lo >= hi {
				break
			}
		}
		if lo < hi {
			out = append(out, Extent{Off: lo, Len: hi - lo})
		}
	}
	return out
}

func extentBytes(ex []Extent) int64 {
	var n int64
	for _, e := range ex {
		n += e.Len
	}
	return n
}

func overlaps(a, b []Extent) bool {
	for _, x := range a {
		for _, y := range b {
			if x.Off < y.End() && y.Off < x.End() {
				return true
			}
		}
	}
	return false
}

// Mapping is one read-only MAP_SHARED mapping of a file in this process:
// either one the genome made (owned), or one it found in /proc/self/maps,
// such as the mapping llama.cpp reads weights through (attached). It is
// immutable after creation and safe for concurrent use.
type Mapping struct {
	addr  uintptr
	size  int64 // bytes mapped
	off   int64 // file offset mapped at addr
	owned bool
	huge  bool   // MADV_HUGEPAGE took, and addr maps a maxFolio-aligned offset at a maxFolio-aligned address
	data  []byte // owned mappings only
	seen  bool   // scratch for revalidate; caller holds the manager's opMu
}

// Addr returns the first address of the mapping.
func (m *Mapping) Addr() uintptr { return m.addr }

// Len returns the mapped length in bytes.
func (m *Mapping) Len() int64 { return m.size }

// FileOffset returns the file offset mapped at Addr.
func (m *Mapping) FileOffset() int64 { return m.off }

// Owned reports whether the genome made this mapping (and will unmap it).
func (m *Mapping) Owned() bool { return m.owned }

// covers reports whether the file range e lies inside the mapping.
func (m *Mapping) covers(e Extent) bool {
	return e.Off >= m.off && e.End() <= m.off+alignUp(m.size)
}

// clip returns the part of the file range e that the mapping maps, if
// any. llama.cpp, for one, maps a GGUF file from the page-aligned start of
// its tensor data, so a whole-file extent is only partly inside that
// mapping, and eviction must still reach the part that is.
func (m *Mapping) clip(e Extent) (Extent, bool) {
	lo := max(e.Off, m.off)
	hi := min(e.End(), m.off+alignUp(m.size))
	if hi <= lo {
		return Extent{}, false
	}
	return Extent{Off: lo, Len: hi - lo}, true
}

// addrOf returns the address of file offset off; caller checked covers.
func (m *Mapping) addrOf(off int64) uintptr { return m.addr + uintptr(off-m.off) }

// ArtifactFile is the file behind an artifact and the mappings of it the
// genome acts on. Maps[0] is the primary mapping: mlock and populate act on
// it, so when llama.cpp's mapping is attached it becomes primary and
// inference reads pages that are already in its page tables. Eviction acts
// on every mapping, because the kernel keeps a page cached while any
// mapping still maps it (measured, see doc.go).
type ArtifactFile struct {
	Path string
	Size int64
	f    *os.File
	rf   *os.File // the same file with POSIX_FADV_RANDOM: reads exactly what is asked
	ra   int64    // read-ahead window of the file's device
	own  *Mapping
	maps []*Mapping

	bufMu sync.Mutex
	buf   []byte // readExact's scratch

	procMaps mapsScanner // revalidate's reader; caller holds the manager's opMu
	// trusted is set while the attached mappings' owner has promised to
	// detach before unmapping them (AttachOptions.DetachedBeforeUnmap):
	// revalidate then trusts them without reading /proc/self/maps.
	trusted bool

	// handed is set once a PageHandle with views into own was returned;
	// closed once the manager closed the file. See retire.
	handed atomic.Bool
	closed atomic.Bool
}

// Mappings returns the mappings the genome acts on, primary first.
func (a *ArtifactFile) Mappings() []*Mapping { return a.maps }

// openArtifactFile opens and maps path.
func openArtifactFile(path string) (*ArtifactFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("genome: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("genome: %w", err)
	}
	if st.Size() == 0 {
		f.Close()
		return nil, fmt.Errorf("genome: %s: empty file: %w", path, ErrBadPage)
	}
	b, err := mapFile(f, st.Size())
	if err != nil {
		f.Close()
		return nil, err
	}
	own := &Mapping{addr: sliceAddr(b), size: st.Size(), owned: true, data: b}
	if err := sysRandom(own.addr, own.size); err != nil {
		unmapFile(b)
		f.Close()
		return nil, err
	}
	own.huge = hugeCapable(own)
	rf, err := openRandom(path)
	if err != nil {
		unmapFile(b)
		f.Close()
		return nil, err
	}
	return &ArtifactFile{Path: path, Size: st.Size(), f: f, rf: rf, ra: readAhead(f), own: own, maps: []*Mapping{own}}, nil
}

// retire closes the file for good, at the manager's Close. A PageHandle
// is a plain value the manager cannot call back, so if one was ever
// handed out over this file its mapping is poisoned (poisonMapping), not
// unmapped: handles report !Valid and give no bytes, and slices taken from
// them earlier read zeros rather than fault or read whatever is mapped
// there next. A file that never handed out a handle is simply unmapped.
// Caller made sure no PageIn can hand out a new one.
func (a *ArtifactFile) retire() error {
	a.closed.Store(true)
	if a.own != nil && a.handed.Load() {
		if err := poisonMapping(a.own.data); err != nil {
			return err
		}
		a.own = nil // now the reservation's, never unmapped
	}
	return a.close()
}

func (a *ArtifactFile) close() error {
	var first error
	if a.own != nil {
		first = unmapFile(a.own.data)
		a.own = nil
	}
	if err := a.procMaps.close(); err != nil && first == nil {
		first = err
	}
	a.maps = nil
	if a.rf != nil {
		if err := a.rf.Close(); err != nil && first == nil {
			first = err
		}
		a.rf = nil
	}
	if a.f != nil {
		if err := a.f.Close(); err != nil && first == nil {
			first = err
		}
		a.f = nil
	}
	return first
}

// primaryFor returns the first mapping that covers e.
func (a *ArtifactFile) primaryFor(e Extent) (*Mapping, error) {
	for _, m := range a.maps {
		if m.covers(e) {
			return m, nil
		}
	}
	return nil, fmt.Errorf("genome: %s: no mapping covers [%d+%d]: %w", a.Path, e.Off, e.Len, ErrBadPage)
}

// view returns the owned mapping's bytes of the raw extent e.
func (a *ArtifactFile) view(e Extent) []byte {
	if a.own == nil || e.Off < 0 || e.End() > a.Size {
		return nil
	}
	return a.own.data[e.Off:e.End():e.End()]
}

// defaultReadAhead is assumed when the file's device has no readable
// read_ahead_kb; it is the value measured on the development machine.
const defaultReadAhead = 8 << 20

// readAhead returns the read-ahead window of the device holding f, from
// /sys/class/bdi/MAJ:MIN/read_ahead_kb.
func readAhead(f *os.File) int64 {
	maj, mnr, _, err := fileID(f)
	if err != nil {
		return defaultReadAhead
	}
	b, err := os.ReadFile(fmt.Sprintf("/sys/class/bdi/%d:%d/read_ahead_kb", maj, mnr))
	if err != nil {
		return defaultReadAhead
	}
	kb, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil || kb <= 0 {
		return defaultReadAhead
	}
	return alignUp(kb << 10)
}

// fault brings the extents in through the primary mapping with op (mlock
// or MADV_POPULATE_READ) without the kernel reading anything outside them.
// Left to itself the fault path reads around: the first fault in a cold
// range reads half a read-ahead window before it, and the asynchronous
// readahead that follows runs up to one and a half windows past its end
// (measured with read_ahead_kb = 8192, doc.go) — pages the budget never
// paid for. So each extent is first read exactly, through a descriptor
// with POSIX_FADV_RANDOM (the kernel then reads just the requested pages,
// in large requests), and op only maps pages that are already cached.
// The mappings themselves are MADV_RANDOM once attached (see attach), so a
// fault that does miss reads a single page, never a window.
func (a *ArtifactFile) fault(ex []Extent, op func(m *Mapping, c Extent) error) error {
	for _, e := range ex {
		m, err := a.primaryFor(e)
		if err != nil {
			return err
		}
		// An extent already in the page cache (a prefetch read it, or a
		// tier below Warm kept it) is mapped without reading it again:
		// the read would only copy the cached bytes into the scratch
		// buffer, a memcpy per page-in on the decoding goroutine.
		if n, err := sysResident(m.addrOf(e.Off), e.Len); err == nil && n == e.Len {
			if err := op(m, e); err != nil {
				return err
			}
			continue
		}
		// The maxFolio-aligned blocks inside the extent are read by op's
		// own faults on a huge mapping, one folio each, mapped whole
		// (hugeBlocks); the rest exactly, chunk by chunk: the minor faults
		// of one chunk run while the readahead of the next is in flight.
		lo, hi := hugeBlocks(m, e)
		for _, c := range [...]Extent{{e.Off, lo - e.Off}, {lo, hi - lo}, {hi, e.End() - hi}} {
			var err error
			switch {
			case c.Len <= 0:
			case c.Off == lo:
				err = op(m, c)
			default:
				err = a.readExact(c, func(c Extent) error { return op(m, c) })
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// hugeBlocks returns the maxFolio-aligned part [lo, hi) of extent e that
// m reads and maps in whole folios; lo == hi == e.End() when there is
// none.
//
// On a mapping with MADV_HUGEPAGE (and MADV_RANDOM), a fault on a page
// that is not cached reads exactly the aligned maxFolio block around it
// into one folio, and maps it with one PMD when the mapping's address is
// aligned like the file offset. A block inside the extent holds only the
// page's bytes, so nothing outside the budget is read. Mapped by PMD, a
// block costs the kernel one page-table entry instead of 512, and the
// CPU one TLB entry: on this project's VM (shadow paging), reading 256
// MiB of cached file through fresh 4 KiB mappings took 178 ms, through
// PMD mappings 12.5 ms, and 8-11 ms mapped already. The blocks of dense
// weights (long runs) gain most; a typical expert's slices (1.9 MiB in
// bench-moe) hold no whole block.
func hugeBlocks(m *Mapping, e Extent) (lo, hi int64) {
	if !m.huge {
		return e.End(), e.End()
	}
	lo, hi = (e.Off+maxFolio-1)&^(maxFolio-1), e.End()&^(maxFolio-1)
	if hi <= lo {
		return e.End(), e.End()
	}
	return lo, hi
}

// hugeCapable asks for transparent huge pages on m (MADV_HUGEPAGE) and
// reports whether hugeBlocks may use them: THP is built in, a fault reads
// whole blocks (hugeFaultReads), the advice took, and m maps
// maxFolio-aligned offsets at maxFolio-aligned addresses.
func hugeCapable(m *Mapping) bool {
	return maxFolio > int64(pageSize) && hugeFaultReads && (m.addr-uintptr(m.off))%uintptr(maxFolio) == 0 &&
		sysHugePage(m.addr, m.size) == nil
}

// ReadAhead reads extent e (page-aligned) of the file into the page cache
// for a page-in to come, without locking, mapping or counting it in any
// tier: what a prefetch does. The maxFolio-aligned blocks inside e are
// faulted into the genome's own mapping where it takes whole folios
// (hugeBlocks), so that the page-in finds folios it can map by PMD; they
// are read before ReadAhead returns. The rest is queued with
// POSIX_FADV_WILLNEED through the POSIX_FADV_RANDOM descriptor, exactly
// those pages, and read asynchronously. Bytes that a prefetch read and no
// page-in took should be given back with DropCached. ReadAhead is safe
// beside the manager's own operations, but not after its Close.
func (a *ArtifactFile) ReadAhead(e Extent) error {
	lo, hi := hugeBlocks(a.own, e)
	if err := a.willNeed(e.Off, lo); err != nil {
		return err
	}
	if err := a.willNeed(hi, e.End()); err != nil {
		return err
	}
	if hi > lo {
		return sysPopulate(a.own.addrOf(lo), hi-lo)
	}
	return nil
}

// DropCached asks the kernel to drop extent e (page-aligned) from the
// page cache, after ReadAhead brought it in for a page-in that did not
// come: it unmaps e from the genome's own mapping and drops it
// (POSIX_FADV_DONTNEED). Pages another mapping holds, or that are
// locked, stay; so a page a tier holds is never dropped. Like ReadAhead,
// not after the manager's Close.
func (a *ArtifactFile) DropCached(e Extent) error {
	if lo, hi := hugeBlocks(a.own, e); hi > lo {
		if err := sysDontNeed(a.own.addrOf(lo), hi-lo); err != nil {
			return err
		}
	}
	return sysFadviseDontNeed(a.f, e.Off, e.Len)
}

// willNeed queues [off, end) of the file for reading, exactly those pages
// (POSIX_FADV_WILLNEED through the POSIX_FADV_RANDOM descriptor), a
// willNeedChunk per call.
func (a *ArtifactFile) willNeed(off, end int64) error {
	for ; off < end; off += willNeedChunk {
		n := min(willNeedChunk, end-off)
		if err := sysFadviseWillNeed(a.rf, off, n); err != nil {
			return &SyscallError{Op: "posix_fadvise(POSIX_FADV_WILLNEED) " + a.Path, Addr: uintptr(off), Len: n, Err: err}
		}
	}
	return nil
}

// readChunk is the size of one exact read; the buffer is reused.
const readChunk = 4 << 20

// willNeedChunk is the most one POSIX_FADV_WILLNEED call reliably queues
// (measured: one call over 16 MiB read about 2 MiB).
const willNeedChunk = 2 << 20

// readExact reads the extent into the page cache and nowhere else. The
// bytes land in a scratch buffer that is thrown away; the copy costs far
// less than the disk read.
//
//   - An extent up to two read-ahead windows long is queued exactly with
//     POSIX_FADV_WILLNEED and read through the POSIX_FADV_RANDOM
//     descriptor, which reads only the pages asked for.
//   - An extent that ends at the end of the file is read through the
//     ordinary descriptor: there is nothing past it to protect.
//   - A longer one has its last two windows queued the same way first,
//     then is read from its start through the ordinary descriptor: a
//     read's readahead starts at the read (unlike a fault's read-around)
//     and ramps up over the extent with large folios, about twice as fast
//     as WILLNEED (doc.go); when it reaches the queued tail, whose pages
//     carry no readahead mark, the chain ends, at most the tail's two
//     windows ahead — inside the extent.
func (a *ArtifactFile) readExact(e Extent, then func(Extent) error) error {
	end := min(e.End(), a.Size) // extents are page-aligned past EOF
	tail := 2 * a.ra
	rd := a.rf
	from := e.Off
	switch {
	case end == a.Size:
		rd, from = a.f, end // nothing past EOF to protect
	case end-e.Off > tail:
		rd, from = a.f, end-tail
	}
	_ = a.willNeed(from, end) // advice: the reads below get the bytes regardless
	a.bufMu.Lock()
	defer a.bufMu.Unlock()
	if a.buf == nil {
		a.buf = make([]byte, readChunk)
	}
	for off := e.Off; off < e.End(); {
		n := min(int64(len(a.buf)), e.End()-off)
		if r := min(n, end-off); r > 0 {
			got, err := rd.ReadAt(a.buf[:r], off)
			if got < int(r) && err != nil {
				return fmt.Errorf("genome: read %s at %d: %w", a.Path, off+int64(got), err)
			}
		}
		if err := then(Extent{Off: off, Len: n}); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// sysMlockFn is the mlock lock calls; tests replace it to fail a chunk.
var sysMlockFn = sysMlock

// lock mlocks the extents (sorted, merged) through the primary mapping.
// A page-in is one mlock per chunk (see fault), so a failure can come
// after earlier chunks were locked; and the kernel marks a range locked
// before it faults it in, so a failed mlock may leave its own chunk locked
// too. lock then munlocks every chunk it asked for, the failed one
// included, but only where they overlap release: the rest are OS pages
// another Warm page shares, which must stay locked. A failed lock thus
// leaves VmLck as it found it.
func (a *ArtifactFile) lock(ex, release []Extent) error {
	var last Extent // the chunk mlock was last asked to lock
	err := a.fault(ex, func(m *Mapping, c Extent) error {
		last = c
		return sysMlockFn(m.addrOf(c.Off), c.Len)
	})
	if err == nil || last.Len == 0 {
		return err
	}
	for _, e := range ex {
		end, done := e.End(), last.Off >= e.Off && last.Off < e.End()
		if done {
			end = last.End()
		}
		m, perr := a.primaryFor(e)
		if perr != nil {
			return errors.Join(err, perr)
		}
		for _, r := range release {
			lo, hi := max(r.Off, e.Off), min(r.End(), end)
			if lo >= hi {
				continue
			}
			if uerr := sysMunlock(m.addrOf(lo), hi-lo); uerr != nil {
				return errors.Join(err, uerr)
			}
		}
		if done {
			break
		}
	}
	return err
}

// populate faults the extents into the primary mapping without locking.
func (a *ArtifactFile) populate(ex []Extent) error {
	return a.fault(ex, func(m *Mapping, c Extent) error { return sysPopulate(m.addrOf(c.Off), c.Len) })
}

// unlock munlocks the extents in every mapping that covers them: a page
// stays locked while any VMA of this process holds it locked.
func (a *ArtifactFile) unlock(ex []Extent) error {
	for _, e := range ex {
		for _, m := range a.maps {
			if c, ok := m.clip(e); ok {
				if err := sysMunlock(m.addrOf(c.Off), c.Len); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// unlockOwn munlocks ex in the genome's own mapping, except where keep
// (extents still locked through it) overlaps. Both are pages' ext,
// page-aligned, so no OS page is shared across the cut.
func (a *ArtifactFile) unlockOwn(ex, keep []Extent) error {
	if a.own == nil || len(ex) == 0 {
		return nil
	}
	for _, e := range subtractExtents(mergeExtents(ex), keep) {
		if c, ok := a.own.clip(e); ok {
			if err := sysMunlock(a.own.addrOf(c.Off), c.Len); err != nil {
				return err
			}
		}
	}
	return nil
}

// evict drops release from the page cache. MADV_DONTNEED on the part of
// each extent every mapping maps, so that no page table still maps them;
// then, over drop, writeback (sysWriteBack: the kernel drops no dirty
// page) and POSIX_FADV_DONTNEED. Either of the two calls alone leaves the
// pages resident (doc.go has the figures). drop holds release and the
// Cold neighbours that share its folios (Region.Drop; nil means release):
// the kernel drops a folio only when its range covers all of it, and
// still keeps any folio that is mapped, locked or dirty. Locked pages
// must be unlocked first.
func (a *ArtifactFile) evict(release, drop []Extent) error {
	for _, e := range release {
		for _, m := range a.maps {
			if c, ok := m.clip(e); ok {
				if err := sysDontNeed(m.addrOf(c.Off), c.Len); err != nil {
					return err
				}
			}
		}
	}
	if drop == nil {
		drop = release
	}
	for _, e := range drop {
		if err := sysWriteBack(a.f, e.Off, e.Len); err != nil {
			return err
		}
		if err := sysFadviseDontNeed(a.f, e.Off, e.Len); err != nil {
			return err
		}
	}
	return nil
}

// resident measures with mincore how many bytes of the extents are in the
// page cache.
func (a *ArtifactFile) resident(ex []Extent) (int64, error) {
	var n int64
	for _, e := range ex {
		m, err := a.primaryFor(e)
		if err != nil {
			return 0, err
		}
		r, err := sysResident(m.addrOf(e.Off), e.Len)
		if err != nil {
			return 0, err
		}
		n += r
	}
	return n, nil
}

// attach finds the other mappings of this file in /proc/self/maps and makes
// the largest of them primary. It returns how many it found. trusted is
// AttachOptions.DetachedBeforeUnmap.
func (a *ArtifactFile) attach(trusted bool) (int, error) {
	maj, mnr, ino, err := fileID(a.f)
	if err != nil {
		return 0, err
	}
	text, err := a.procMaps.read()
	if err != nil {
		return 0, err
	}
	var found []*Mapping
	err = a.procMaps.runs(text, func(r fileRun) {
		if r.ino != ino || r.maj != maj || r.min != mnr {
			return
		}
		if a.own != nil && r.start < a.own.addr+uintptr(alignUp(a.own.size)) && a.own.addr < r.end {
			return // our own mapping
		}
		found = append(found, &Mapping{addr: r.start, size: int64(r.end - r.start), off: r.off})
	})
	if err != nil {
		return 0, err
	}
	// From now on the genome decides which pages of the file are read.
	// The kernel's read-around on a fault would otherwise pull in whole
	// windows (8 MiB here) of neighbouring pages — experts the budget does
	// not hold — whenever inference touches a page the genome has not
	// paged in, e.g. a dense weight after an eviction. MADV_RANDOM makes
	// such a fault read one page.
	for _, m := range found {
		if err := sysRandom(m.addr, m.size); err != nil {
			return 0, err
		}
		// Blocks of whole folios are read and mapped whole (hugeBlocks)
		// where the kernel lets them be: THP built in, and the mapping
		// aligned. MADV_HUGEPAGE stays after DetachMappings: it only
		// makes llama.cpp's own faults read and map whole blocks too.
		m.huge = hugeCapable(m)
	}
	if len(found) == 0 {
		return 0, fmt.Errorf("genome: %s (inode %d): %w", a.Path, ino, ErrNoMapping)
	}
	slices.SortStableFunc(found, func(x, y *Mapping) int {
		return int(min(max(y.size-x.size, -1), 1))
	})
	maps := append(found, a.own)
	a.maps = maps
	a.trusted = trusted
	return len(found), nil
}

// hasForeign reports whether a mapping the genome did not make is attached.
func (a *ArtifactFile) hasForeign() bool {
	for _, m := range a.maps {
		if !m.owned {
			return true
		}
	}
	return false
}

// revalidate drops attached mappings that are no longer in /proc/self/maps
// as a mapping of this file (llama.cpp freed the model). Acting on a stale
// address would be worse than useless: the range may since hold other
// memory, and MADV_DONTNEED on it would zero it. It returns how many
// mappings it dropped.
func (a *ArtifactFile) revalidate() (int, error) {
	if a.trusted || !a.hasForeign() {
		return 0, nil
	}
	maj, mnr, ino, err := fileID(a.f)
	if err != nil {
		return 0, err
	}
	text, err := a.procMaps.read()
	if err != nil {
		return 0, err
	}
	for _, m := range a.maps {
		m.seen = m.owned
	}
	err = a.procMaps.runs(text, func(r fileRun) {
		if r.ino != ino || r.maj != maj || r.min != mnr {
			return
		}
		for _, m := range a.maps {
			if !m.seen && r.start <= m.addr && m.addr+uintptr(m.size) <= r.end &&
				r.off+int64(m.addr-r.start) == m.off {
				m.seen = true
			}
		}
	})
	if err != nil {
		return 0, err
	}
	dropped := 0
	for _, m := range a.maps {
		if !m.seen {
			dropped++
		}
	}
	if dropped == 0 {
		return 0, nil
	}
	// A new slice, not an in-place filter: Mappings may have handed the
	// old one out.
	kept := make([]*Mapping, 0, len(a.maps)-dropped)
	for _, m := range a.maps {
		if m.seen {
			kept = append(kept, m)
		}
	}
	a.maps = kept
	return dropped, nil
}

// detach drops the foreign mappings, handing their read-around back to the
// kernel (MADV_NORMAL): once the genome no longer decides what is read,
// one-page faults would only slow inference down. Caller revalidated the
// mappings, so none of them has been unmapped.
func (a *ArtifactFile) detach() error {
	var first error
	for _, m := range a.maps {
		if !m.owned {
			if err := sysNormal(m.addr, m.size); err != nil && first == nil {
				first = err
			}
		}
	}
	a.maps = []*Mapping{a.own}
	a.trusted = false
	return first
}

// parseStatusKB returns the value of a "Key:   N kB" line of
// /proc/self/status, in bytes.
func parseStatusKB(status []byte, key string) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		f := bytes.Fields(rest)
		if len(f) < 1 {
			break
		}
		n, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("genome: status %s %q: %w", key, rest, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("genome: status has no %s line", key)
}

// parseStatusHex returns the value of a "Key:   hex" line of
// /proc/self/status, such as CapEff.
func parseStatusHex(status []byte, key string) (uint64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte(key))
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(rest)), 16, 64)
		if err != nil {
			return 0, fmt.Errorf("genome: status %s %q: %w", key, rest, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("genome: status has no %s line", key)
}

// rlimInfinity is RLIM_INFINITY; capIPCLock is CAP_IPC_LOCK's bit number.
const (
	rlimInfinity = ^uint64(0)
	capIPCLock   = 14
)

// memlockAllowance returns how many more bytes a process may mlock given
// its RLIMIT_MEMLOCK soft limit cur, its effective capabilities capEff and
// the bytes it has locked already (VmLck, which the kernel counts against
// the limit), and whether there is a limit at all: there is none with
// RLIM_INFINITY, nor with CAP_IPC_LOCK, which lets mlock past it.
func memlockAllowance(cur, capEff uint64, locked int64) (n int64, limited bool) {
	if cur == rlimInfinity || capEff&(1<<capIPCLock) != 0 {
		return 0, false
	}
	if cur > uint64(maxInt64) {
		return 0, false
	}
	return max(int64(cur)-locked, 0), true
}

// lockAllowance is how the manager asks the kernel for memlockAllowance;
// tests replace it to stand in for a process without CAP_IPC_LOCK.
var lockAllowance = memlockNow

// LockedBytes returns VmLck of this process: the bytes the kernel counts as
// mlock'd, across every VMA, whoever locked them.
func LockedBytes() (int64, error) { return vmLocked() }

// Resident returns how many bytes of b mincore reports resident. b is
// rounded out to OS pages.
func Resident(b []byte) (int64, error) {
	if len(b) == 0 {
		return 0, nil
	}
	addr := sliceAddr(b)
	lo := addr &^ uintptr(pageSize-1)
	return sysResident(lo, alignUp(int64(addr-lo)+int64(len(b))))
}
