package genome

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// foreignMap maps p the way llama.cpp does (MAP_SHARED, read-only,
// MAP_POPULATE: the whole file is read at load).
func foreignMap(tb testing.TB, p string, size int) []byte {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	b, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Munmap(b) }) // EINVAL-free even if the test unmapped it first
	return b
}

// walkSmaps calls fn with the fields of each line of /proc/self/smaps
// that describes a VMA lying inside b.
func walkSmaps(tb testing.TB, b []byte, fn func(f []string)) {
	tb.Helper()
	raw, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		tb.Fatal(err)
	}
	lo, hi := sliceAddr(b), sliceAddr(b)+uintptr(len(b))
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if !strings.HasSuffix(f[0], ":") { // a VMA header line
			r, ok := parseMapsRun([]byte(line))
			if !ok {
				tb.Fatalf("smaps header %q", line)
			}
			in = r.start >= lo && r.end <= hi
			fn(nil) // a new VMA starts
			continue
		}
		if in {
			fn(f)
		}
	}
}

// smapsLocked sums the Rss of the mlock'd VMAs ("lo" in VmFlags) of
// /proc/self/smaps that lie inside b. Rss, not the Locked: line, because
// Locked is proportional (Pss) and halves when two mappings share a page.
func smapsLocked(tb testing.TB, b []byte) int64 {
	tb.Helper()
	var rss, total int64
	walkSmaps(tb, b, func(f []string) {
		switch {
		case f == nil:
			rss = 0
		case f[0] == "Rss:":
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			rss = kb << 10
		case f[0] == "VmFlags:" && slices.Contains(f[1:], "lo"):
			total += rss
		}
	})
	return total
}

// smapsFlag reports whether any VMA inside b has flag in its VmFlags line
// of /proc/self/smaps (e.g. "rr" for MADV_RANDOM).
func smapsFlag(tb testing.TB, b []byte, flag string) bool {
	tb.Helper()
	found := false
	walkSmaps(tb, b, func(f []string) {
		if f != nil && f[0] == "VmFlags:" && slices.Contains(f[1:], flag) {
			found = true
		}
	})
	return found
}

// TestAttachToForeignMapping checks the two facts attaching rests on: an
// eviction that does not know llama.cpp's mapping leaves the pages
// resident, and once attached, eviction and locking act on that mapping.
func TestAttachToForeignMapping(t *testing.T) {
	const size = 8 * mib
	fx := newFixture(t, size, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	llama := foreignMap(t, fx.path, size)
	if got, _ := Resident(llama); got != size {
		t.Fatalf("after MAP_POPULATE: %d resident, want %d", got, size)
	}
	ctx := context.Background()
	a, b := RangePage(fx.art, 0, 2*mib), RangePage(fx.art, 4*mib, 2*mib)

	fx.pageOut(t, a, TierCold) // not attached: llama's page tables still hold a
	fx.flush(t)
	recs := fx.rec.byKey(KeyEviction)
	if r := recs[len(recs)-1].(EvictionRecord); r.StillResident != 2*mib {
		t.Fatalf("unattached eviction: StillResident %d, want %d", r.StillResident, 2*mib)
	}
	if got, _ := Resident(llama[:2*mib]); got != 2*mib {
		t.Fatalf("unattached eviction: llama's mapping has %d resident, want %d", got, 2*mib)
	}

	n, err := fx.m.AttachMappings(fx.art)
	if err != nil || n != 1 {
		t.Fatalf("AttachMappings: got %d, %v, want 1 mapping", n, err)
	}
	file, _ := fx.m.File(fx.art)
	if pm := file.Mappings()[0]; pm.Owned() || pm.Addr() != sliceAddr(llama) || pm.Len() != size {
		t.Fatalf("primary mapping: got owned=%v addr %#x len %d, want llama's %#x", pm.Owned(), pm.Addr(), pm.Len(), sliceAddr(llama))
	}
	if _, _, err := fx.m.PageIn(ctx, fx.alice, a); err != nil { // cold -> warm
		t.Fatal(err)
	}
	fx.pageOut(t, a, TierCold)
	if got, _ := Resident(llama[:2*mib]); got != 0 {
		t.Fatalf("attached eviction: llama's mapping has %d resident, want 0", got)
	}
	if got, _ := Resident(llama[2*mib:]); got != size-2*mib {
		t.Fatalf("attached eviction: rest of llama's mapping %d resident, want %d", got, size-2*mib)
	}

	fx.pageIn(t, b)
	if got := smapsLocked(t, llama); got != 2*mib {
		t.Fatalf("smaps Locked in llama's mapping: got %d, want %d", got, 2*mib)
	}
	wantErr(t, fx.m.PageOut(ctx, fx.admin, WholePage(fx.art), TierFrozen), ErrUnconfiguredTier)

	// llama.cpp frees the model: the genome must stop acting on that range.
	if err := unix.Munmap(llama); err != nil {
		t.Fatal(err)
	}
	fx.pageOut(t, b, TierCold)
	if file.Mappings()[0] != nil && !file.Mappings()[0].Owned() {
		t.Fatal("after llama's munmap: foreign mapping still attached")
	}
	if got := cachedBytes(t, fx.path, 4*mib, 2*mib); got != 0 {
		t.Fatalf("after llama's munmap and PageOut: %d resident, want 0", got)
	}
}

func TestDetachKeepsWarmLocked(t *testing.T) {
	fx := newFixture(t, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	llama := foreignMap(t, fx.path, 4*mib)
	if _, err := fx.m.AttachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	fx.pageIn(t, RangePage(fx.art, 0, mib))
	if got := smapsLocked(t, llama); got != mib {
		t.Fatalf("attached: llama's mapping has %d locked, want %d", got, mib)
	}
	if !smapsFlag(t, llama, "rr") {
		t.Error("attached: llama's mapping lacks MADV_RANDOM (VmFlags rr)")
	}
	if err := fx.m.DetachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	if smapsFlag(t, llama, "rr") {
		t.Error("detached: llama's mapping still has MADV_RANDOM (VmFlags rr)")
	}
	if got := smapsLocked(t, llama); got != 0 {
		t.Fatalf("detached: llama's mapping has %d locked, want 0", got)
	}
	file, _ := fx.m.File(fx.art)
	if got := smapsLocked(t, file.own.data); got != mib {
		t.Fatalf("detached: own mapping has %d locked, want %d", got, mib)
	}
}

// TestAttachAfterWarmLocksOnce attaches llama.cpp's mapping after a page
// is Warm: the page is locked there and let go in the own mapping, since
// the kernel would count it twice against RLIMIT_MEMLOCK.
func TestAttachAfterWarmLocksOnce(t *testing.T) {
	fx := newFixture(t, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	llama := foreignMap(t, fx.path, 4*mib)
	start := lockedNow(t)
	fx.pageIn(t, RangePage(fx.art, 0, mib))
	if got := lockedNow(t) - start; got != mib {
		t.Fatalf("VmLck +%d after the page-in, want +%d", got, mib)
	}
	if _, err := fx.m.AttachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	file, _ := fx.m.File(fx.art)
	if got, own := smapsLocked(t, llama), smapsLocked(t, file.own.data); got != mib || own != 0 {
		t.Errorf("attached: %d locked in llama's mapping, %d in the own; want %d and 0", got, own, mib)
	}
	if got := lockedNow(t) - start; got != mib {
		t.Errorf("VmLck +%d after attaching, want +%d", got, mib)
	}
	if err := fx.m.DetachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	if got, own := smapsLocked(t, llama), smapsLocked(t, file.own.data); got != 0 || own != mib {
		t.Errorf("detached: %d locked in llama's mapping, %d in the own; want 0 and %d", got, own, mib)
	}
}

// TestCloseDetaches: closing the genome without DetachMappings hands
// read-around back to the kernel on the foreign mapping all the same, and
// unlocks the Warm pages it locked there.
func TestCloseDetaches(t *testing.T) {
	fx := newFixture(t, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	llama := foreignMap(t, fx.path, 4*mib)
	if _, err := fx.m.AttachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	if !smapsFlag(t, llama, "rr") {
		t.Fatal("attached: llama's mapping lacks MADV_RANDOM (VmFlags rr)")
	}
	fx.pageIn(t, RangePage(fx.art, 0, mib))
	if got := smapsLocked(t, llama); got != mib {
		t.Fatalf("attached: llama's mapping has %d locked, want %d", got, mib)
	}
	if err := fx.m.Close(); err != nil {
		t.Fatal(err)
	}
	if smapsFlag(t, llama, "rr") {
		t.Error("closed without detaching: llama's mapping still has MADV_RANDOM (VmFlags rr)")
	}
	if got := smapsLocked(t, llama); got != 0 {
		t.Errorf("closed without detaching: llama's mapping has %d locked, want 0", got)
	}
}

func TestAttachWithoutForeignMapping(t *testing.T) {
	fx := newFixture(t, mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	_, err := fx.m.AttachMappings(fx.art)
	wantErr(t, err, ErrNoMapping)
}

// TestAttachDetachedBeforeUnmap: a fault checks /proc/self/maps for the
// attached mappings unless the caller promised to detach before
// unmapping them; either way the fault locks the page in the foreign
// mapping, and after DetachMappings the checks are back (the promise
// went with the mappings).
func TestAttachDetachedBeforeUnmap(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		fx := newFixture(t, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
		llama := foreignMap(t, fx.path, 4*mib)
		if _, err := fx.m.AttachMappingsWith(fx.art, AttachOptions{DetachedBeforeUnmap: trusted}); err != nil {
			t.Fatal(err)
		}
		file, _ := fx.m.File(fx.art)
		before := file.procMaps.reads
		for i := range int64(3) {
			fx.pageIn(t, RangePage(fx.art, i*mib, mib))
		}
		reads := file.procMaps.reads - before
		if trusted && reads != 0 || !trusted && reads < 3 {
			t.Errorf("DetachedBeforeUnmap %v: 3 faults read /proc/self/maps %d times", trusted, reads)
		}
		if got := smapsLocked(t, llama); got != 3*mib {
			t.Errorf("DetachedBeforeUnmap %v: llama's mapping has %d locked, want %d", trusted, got, 3*mib)
		}
		if err := fx.m.DetachMappings(fx.art); err != nil {
			t.Fatal(err)
		}
		if file.trusted {
			t.Error("after DetachMappings: still trusted")
		}
	}
}

// smapsSum sums field (e.g. "FilePmdMapped:") over the VMAs inside b, in
// bytes.
func smapsSum(tb testing.TB, b []byte, field string) int64 {
	tb.Helper()
	var total int64
	walkSmaps(tb, b, func(f []string) {
		if f != nil && f[0] == field {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				tb.Fatal(err)
			}
			total += kb << 10
		}
	})
	return total
}

// TestPageInMapsWholeFolios: a page-in through an attached mapping reads
// the maxFolio-aligned blocks inside the page as whole folios, which the
// kernel maps with one PMD each, and the unaligned ends exactly: nothing
// outside the page is read. Read exactly, page by page, the same bytes
// land in small folios that no PMD can map (the cache is dropped first,
// so the test does not see the folios of the file's write).
func TestPageInMapsWholeFolios(t *testing.T) {
	if maxFolio != 2*mib {
		t.Skipf("largest page-cache folio %d bytes, not 2 MiB: no THP here", maxFolio)
	}
	const size = 12 * mib
	fx := newFixture(t, size, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	llama := alignedForeignMap(t, fx.path, size)
	if _, err := fx.m.AttachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	file, _ := fx.m.File(fx.art)
	if pm := file.Mappings()[0]; pm.Addr() != sliceAddr(llama) || !pm.huge {
		t.Skip("MADV_HUGEPAGE refused on the attached mapping: THP disabled here")
	}
	dropCache(t, fx.path)
	// 1.5 MiB to 9.5 MiB: the blocks at 2, 4 and 6 MiB are inside.
	page := RangePage(fx.art, 3*mib/2, 8*mib)
	fx.pageIn(t, page)
	if got, want := smapsSum(t, llama, "FilePmdMapped:"), int64(6*mib); got != want {
		t.Errorf("FilePmdMapped after the page-in: %d, want %d (three whole blocks)", got, want)
	}
	if got, want := cachedBytes(t, fx.path, 0, size), int64(8*mib); got != want {
		t.Errorf("page cache holds %d bytes of the file, want the page's %d", got, want)
	}
	if got := smapsLocked(t, llama); got != 8*mib {
		t.Errorf("locked in llama's mapping: %d, want %d", got, 8*mib)
	}
}

// BenchmarkMapCached measures what mapping a cached file costs per 4 KiB
// page, beside reading it: each iteration drops the mapping's page tables
// (MADV_DONTNEED; the pages stay cached), faults the range back in
// (MADV_POPULATE_READ, as a Bench page-in does; mlock faults the same
// way) and reads a word of every page, as the first matmul over a
// paged-in expert does. "mapped" only reads: the floor. "4KiB" maps a file cached in
// 4 KiB folios (read page by page, as readExact leaves an unaligned
// extent), one page-table entry each; "2MiB" one cached in 2 MiB folios
// through a MADV_HUGEPAGE mapping, one PMD per 512 pages (hugeBlocks).
// Where a hypervisor shadows the guest's page tables, every fresh entry
// costs an exit on its first touch.
func BenchmarkMapCached(b *testing.B) {
	const size = 64 * mib
	for _, tc := range []struct {
		name      string
		huge, zap bool
	}{{"mapped", false, false}, {"4KiB", false, true}, {"2MiB", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			p := filepath.Join(b.TempDir(), "m")
			if err := os.WriteFile(p, pattern(size, 3), 0o644); err != nil { // one write: 2 MiB folios
				b.Fatal(err)
			}
			if !tc.huge {
				dropCache(b, p)
				f := openTB(b, p)
				if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, pageSize)
				for off := int64(0); off < size; off += int64(pageSize) {
					if _, err := f.ReadAt(buf, off); err != nil {
						b.Fatal(err)
					}
				}
			}
			m := alignedForeignMap(b, p, size)
			if tc.huge && (maxFolio != 2*mib || sysHugePage(sliceAddr(m), size) != nil) {
				b.Skip("no THP here")
			}
			touch := func() {
				for i := 0; i < len(m); i += pageSize {
					touchSink += m[i]
				}
			}
			touch()
			b.SetBytes(size)
			b.ResetTimer()
			for range b.N {
				if tc.zap {
					if err := sysDontNeed(sliceAddr(m), size); err != nil {
						b.Fatal(err)
					}
					if err := sysPopulate(sliceAddr(m), size); err != nil {
						b.Fatal(err)
					}
				}
				touch()
			}
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(size/pageSize), "ns/page")
			if pmd := smapsSum(b, m, "FilePmdMapped:"); tc.zap && tc.huge != (pmd > 0) {
				b.Errorf("%d bytes mapped by PMD; want them all (2MiB) or none (4KiB)", pmd)
			}
		})
	}
}

// touchSink keeps BenchmarkMapCached's reads from being optimized away.
var touchSink byte

// TestReadAheadAndDropCached checks what the engine's prefetch readers
// rely on: ReadAhead brings exactly the asked bytes of the file into the
// page cache (the unaligned ends asynchronously: the test waits), the
// aligned 2 MiB blocks inside as whole folios mapped by the genome's own
// mapping; DropCached takes them out again. No tier counts any of it.
func TestReadAheadAndDropCached(t *testing.T) {
	const size = 16 * mib
	fx := newFixture(t, size, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	file, _ := fx.m.File(fx.art)
	dropCache(t, fx.path)
	if c := cachedBytes(t, fx.path, 0, size); c > size/2 {
		t.Skipf("the page cache kept %d of %d bytes after POSIX_FADV_DONTNEED", c, size)
	}
	e := Extent{Off: 3 * mib / 2, Len: 8 * mib} // blocks at 2, 4 and 6 MiB inside
	if err := file.ReadAhead(e); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for cachedBytes(t, fx.path, e.Off, e.Len) < e.Len {
		if time.Now().After(deadline) {
			t.Fatalf("after ReadAhead of [1.5, 9.5) MiB, %d of %d bytes cached", cachedBytes(t, fx.path, e.Off, e.Len), e.Len)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := cachedBytes(t, fx.path, 0, e.Off) + cachedBytes(t, fx.path, e.End(), size-e.End()); c > 0 {
		t.Errorf("%d bytes outside [1.5, 9.5) MiB cached: ReadAhead read around what it was asked", c)
	}
	if !file.own.huge {
		t.Log("the own mapping takes no whole folios here (THP, or its address): PMD check skipped")
	} else if got := smapsSum(t, file.own.data, "FilePmdMapped:"); got != 6*mib {
		t.Errorf("own mapping: %d bytes mapped by PMD, want the three whole blocks' %d", got, 6*mib)
	}
	if used := fx.m.WorkingSet().Bytes(TierWarm); used != 0 {
		t.Errorf("Warm holds %d bytes after ReadAhead, want 0", used)
	}
	if err := file.DropCached(e); err != nil {
		t.Fatal(err)
	}
	if c := cachedBytes(t, fx.path, 0, size); c > 0 {
		t.Errorf("after DropCached, %d bytes still cached", c)
	}
}
