package genome

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/modelgen"
	"golang.org/x/sys/unix"
)

// llamaMap maps the file at p from the page-aligned offset off to its end,
// read-only, MAP_SHARED|MAP_POPULATE: llama.cpp's mapping as its loader
// leaves it once it has unmapped the header it does not use.
func llamaMap(tb testing.TB, p string, off int64) []byte {
	tb.Helper()
	f := openTB(tb, p)
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	b, err := unix.Mmap(int(f.Fd()), off, int(st.Size()-off), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { unix.Munmap(b) })
	return b
}

// denseResident measures, through the mapping b of file offset off, how
// many bytes of the OS pages b maps that hold no byte of ex are resident.
func denseResident(tb testing.TB, b []byte, off, size int64, ex []Extent) (resident, total int64) {
	tb.Helper()
	dense := subtractExtents([]Extent{{Off: off, Len: alignUp(size) - off}}, alignExtents(ex, size))
	for _, e := range dense {
		r, err := Resident(b[e.Off-off : min(e.End()-off, int64(len(b)))])
		if err != nil {
			tb.Fatal(err)
		}
		resident += r
	}
	return resident, extentBytes(dense)
}

// expertResidency measures, page by page through the mapping b of file
// offset off, the OS pages of the expert bytes ex (sorted, merged) that
// are resident. It returns them all, and those no dense page explains.
// The page cache keeps a file in naturally aligned folios of at most
// maxFolio bytes and drops only whole folios; the genome never asks it to
// drop a page that holds no expert byte (a dense weight inference reads,
// which no genome page covers), so an expert page in the same maxFolio
// block as such a page may stay. Any other resident expert page is an
// eviction that did not happen.
func expertResidency(tb testing.TB, b []byte, off, size int64, ex []Extent) (resident, stray int64) {
	tb.Helper()
	ps := int64(pageSize)
	expert := make(map[int64]bool) // OS page offsets holding an expert byte
	for _, e := range alignExtents(ex, size) {
		for o := e.Off; o < e.End(); o += ps {
			expert[o] = true
		}
	}
	pinned := make(map[int64]bool) // maxFolio blocks with a dense page
	for o := off; o < size; o += ps {
		if !expert[o] {
			pinned[o&^(maxFolio-1)] = true
		}
	}
	for o := range expert {
		if o < off {
			continue
		}
		r, err := Resident(b[o-off : min(o-off+ps, int64(len(b)))])
		if err != nil {
			tb.Fatal(err)
		}
		resident += r
		if r > 0 && !pinned[o&^(maxFolio-1)] {
			stray += r
		}
	}
	return resident, stray
}

// TestExpertPageOutOverPopulatedMapping is what engine.NewBudget does after
// llama.cpp loaded an MoE model: attach to llama.cpp's MAP_POPULATE'd
// mapping (which starts past the header) and page every expert out to
// Cold, one expert at a time. The page cache holds the file in large
// folios that straddle expert boundaries, as a file's writer left them or
// as the populating readahead read them; POSIX_FADV_DONTNEED drops only
// folios wholly inside its range, so an eviction that asked for exactly
// each expert's bytes dropped none of the straddling folios: 22 of 27 MB
// of expert bytes stayed resident here, all of them in the engine. After
// paging out, and again after a PageIn/PageOut cycle, no expert page may
// be resident but those sharing a folio with a dense page, and every
// dense page must still be: the dense weights are not the experts' to
// drop.
func TestExpertPageOutOverPopulatedMapping(t *testing.T) {
	tests := []struct {
		name  string
		drop  bool // read back by MAP_POPULATE rather than as written
		copy  bool // copied in one write: 2 MiB folios, mapped by PMD
		cycle bool
	}{
		{name: "as written"},
		{name: "copied", copy: true},
		{name: "read by populate", drop: true},
		{name: "as written/page-in cycle", cycle: true},
		{name: "copied/page-in cycle", copy: true, cycle: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "moe.gguf")
			if err := modelgen.Write(p, moeSpec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
				t.Fatal(err)
			}
			if tt.copy {
				raw, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				p = filepath.Join(t.TempDir(), "copy.gguf")
				if err := os.WriteFile(p, raw, 0o644); err != nil {
					t.Fatal(err)
				}
				if err := openTB(t, p).Sync(); err != nil { // clean: dirtiness is TestPageOutOfDirtyPages'
					t.Fatal(err)
				}
			}
			if tt.drop {
				dropCache(t, p)
			}
			tiers, err := Budget(8 * mib)
			if err != nil {
				t.Fatal(err)
			}
			m, err := NewLocal(Config{Tiers: tiers})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m.Close() })
			id, gf, err := m.RegisterGGUF(p)
			if err != nil {
				t.Fatal(err)
			}
			off := alignDown(int64(gf.DataOffset))
			if off == 0 {
				t.Fatalf("tensor data at %d: the mapping would start at 0, want past the header", gf.DataOffset)
			}
			llama := llamaMap(t, p, off)
			if n, err := m.AttachMappings(id); err != nil || n != 1 {
				t.Fatalf("AttachMappings: got %d, %v, want 1 mapping", n, err)
			}
			self, who := NewPersonaID(), NewPersonaID()
			full := FullAccess
			for _, ps := range []Persona{{ID: self, Name: "engine", Access: &full}, {ID: who, Name: "inference"}} {
				if err := m.RegisterPersona(ps); err != nil {
					t.Fatal(err)
				}
			}
			refs, err := m.Pages(id, PageExpert)
			if err != nil {
				t.Fatal(err)
			}
			var ex []Extent
			for l := range moeSpec.Layers {
				for e := range moeSpec.Experts {
					rs, err := gf.ExpertRanges(l, e)
					if err != nil {
						t.Fatal(err)
					}
					for _, r := range rs {
						ex = append(ex, Extent{Off: int64(r.Off), Len: int64(r.Len)})
					}
				}
			}
			ex = mergeExtents(ex)
			total := extentBytes(alignExtents(ex, gf.FileSize))
			if got, _ := expertResidency(t, llama, off, gf.FileSize, ex); got != total {
				t.Fatalf("after MAP_POPULATE: %d expert bytes resident, want all %d", got, total)
			}
			if got, want := denseResident(t, llama, off, gf.FileSize, ex); got != want {
				t.Fatalf("after MAP_POPULATE: %d dense bytes resident, want all %d", got, want)
			}
			ctx := context.Background()
			pageOutAll := func() {
				t.Helper()
				for _, ref := range refs {
					if err := m.PageOut(ctx, self, ref, TierCold); err != nil {
						t.Fatal(err)
					}
				}
			}
			pageOutAll()
			if tt.cycle {
				for e := range moeSpec.Experts {
					ref := ExpertPage(id, 1, e)
					if _, _, err := m.PageIn(ctx, who, ref); err != nil {
						t.Fatal(err)
					}
					if r, n, err := m.Residency(ref); err != nil || r != n {
						t.Fatalf("after PageIn(%s): %d of %d bytes resident (%v), want all", ref, r, n, err)
					}
				}
				pageOutAll()
			}
			resident, stray := expertResidency(t, llama, off, gf.FileSize, ex)
			var measured int64
			for _, ref := range refs {
				r, _, err := m.Residency(ref)
				if err != nil {
					t.Fatal(err)
				}
				measured += r
			}
			// Residency counts an OS page two neighbouring experts share
			// twice, so its sum may exceed resident.
			t.Logf("%d of %d expert bytes resident (sum of Residency: %d), all in folios shared with dense weights but %d", resident, total, measured, stray)
			// A page out of experts is no page out of the dense weights
			// around them, though releasing an expert may have unmapped
			// a huge page they share (a file's PMD mapping is not split
			// but zapped whole).
			if got, want := denseResident(t, llama, off, gf.FileSize, ex); got != want {
				t.Errorf("after paging every expert out: %d dense bytes resident, want all %d", got, want)
			}
			if stray != 0 {
				t.Errorf("after paging every expert out: %d expert bytes resident outside folios shared with dense weights, want 0", stray)
			}
		})
	}
}

// TestColdDropKeepsHeldNeighbour checks that an eviction widened to the
// folios of Cold neighbours spares the bytes of a page another tier holds,
// even where no mapping maps them any more, which is how Bench pages are
// left once the mapping they were populated in is gone (llama.cpp freed
// the model after DetachMappings): the kernel would drop them, so the
// genome must not ask. Here the Whole page is Cold, so every byte around
// a is a Cold neighbour's.
func TestColdDropKeepsHeldNeighbour(t *testing.T) {
	const size = 4 * mib
	fx := newFixture(t, size, []TierStore{NewBenchStore(0), NewColdStore()}, ArtifactSpec{})
	llama := foreignMap(t, fx.path, size)
	if _, err := fx.m.AttachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	fx.pageOut(t, WholePage(fx.art), TierCold)
	a, b := RangePage(fx.art, 0, mib), RangePage(fx.art, mib+64<<10, 256<<10)
	fx.pageIn(t, a)
	fx.pageIn(t, b)
	if err := fx.m.DetachMappings(fx.art); err != nil {
		t.Fatal(err)
	}
	if err := unix.Munmap(llama); err != nil {
		t.Fatal(err)
	}
	fx.pageOut(t, a, TierCold)
	if got := cachedBytes(t, fx.path, mib+64<<10, 256<<10); got != 256<<10 {
		t.Errorf("Bench neighbour after PageOut of a: %d bytes resident, want all %d", got, 256<<10)
	}
	if got := cachedBytes(t, fx.path, 0, mib); got != 0 {
		t.Errorf("a after PageOut: %d bytes resident, want 0", got)
	}
}

// TestPageOutOfDirtyPages pages out part of a file written moments ago and
// not yet synced. POSIX_FADV_DONTNEED only starts the writeback of dirty
// pages and drops none of them, so without waiting for it the range stayed
// resident: a model copied or generated just before a budgeted run would
// ignore its budget until the kernel's flusher got to it. The range is
// whole folios, so that only dirtiness can keep it.
func TestPageOutOfDirtyPages(t *testing.T) {
	size := 3 * maxFolio
	p := filepath.Join(t.TempDir(), "dirty.bin")
	if err := os.WriteFile(p, pattern(size, 5), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err := NewLocal(Config{Tiers: []TierStore{NewBenchStore(0), NewColdStore()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	id, err := m.RegisterArtifact(ArtifactSpec{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	admin, full := NewPersonaID(), FullAccess
	if err := m.RegisterPersona(Persona{ID: admin, Access: &full}); err != nil {
		t.Fatal(err)
	}
	if got := cachedBytes(t, p, maxFolio, maxFolio); got != maxFolio {
		t.Fatalf("after writing: %d bytes of the range cached, want all %d", got, maxFolio)
	}
	if err := m.PageOut(context.Background(), admin, RangePage(id, maxFolio, maxFolio), TierCold); err != nil {
		t.Fatal(err)
	}
	if got := cachedBytes(t, p, maxFolio, maxFolio); got != 0 {
		t.Errorf("dirty range after PageOut: %d bytes resident, want 0", got)
	}
}
