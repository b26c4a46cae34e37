package genome

import (
	"context"
	"errors"
	"testing"
)

func TestPageInWarmIsResidentAndLocked(t *testing.T) {
	fx := newFixture(t, 16*mib, []TierStore{NewWarmStore(0), NewBenchStore(0)}, ArtifactSpec{Name: "m"})
	ref := RangePage(fx.art, 4*mib+100, 4*mib) // unaligned start: rounds out to 4 MiB + 1 page
	if got := cachedBytes(t, fx.path, 0, 16*mib); got != 0 {
		t.Fatalf("before PageIn: got %d bytes cached, want 0", got)
	}
	lockBefore := lockedNow(t)

	h, f := fx.pageIn(t, ref)
	if f == nil {
		t.Fatal("first PageIn: got no fault, want a cold miss")
	}
	if !f.ColdMiss() || f.From != TierNone || f.To != TierWarm {
		t.Fatalf("fault: got from %s to %s, want from none to warm", f.From, f.To)
	}
	want := int64(4*mib + pageSize)
	if f.Bytes != want || h.Size() != want {
		t.Fatalf("fault bytes %d, handle size %d, want %d", f.Bytes, h.Size(), want)
	}
	if got := cachedBytes(t, fx.path, 4*mib, want); got != want {
		t.Fatalf("after PageIn: mincore says %d bytes resident, want %d", got, want)
	}
	if got := cachedBytes(t, fx.path, 12*mib, 4*mib); got != 0 {
		t.Fatalf("after PageIn: bytes outside the page: got %d resident, want 0", got)
	}
	if got := lockedNow(t) - lockBefore; got < want {
		t.Fatalf("VmLck grew by %d, want at least %d", got, want)
	}
	fx.checkBytes(t, h)

	h2, f2 := fx.pageIn(t, ref)
	if f2 != nil || h2.Tier != TierWarm {
		t.Fatalf("second PageIn: got fault %v tier %s, want a hit in warm", f2, h2.Tier)
	}

	fx.pageOut(t, ref, TierCold)
	if got := cachedBytes(t, fx.path, 4*mib, want); got != 0 {
		t.Fatalf("after PageOut to cold: mincore says %d bytes resident, want 0", got)
	}
	if got := lockedNow(t) - lockBefore; got != 0 {
		t.Fatalf("after PageOut: VmLck %+d bytes from the start, want 0", got)
	}
	fx.flush(t)
	evs := fx.rec.byKey(KeyEviction)
	if len(evs) != 1 {
		t.Fatalf("got %d eviction events, want 1", len(evs))
	}
	if r := evs[0].(EvictionRecord); r.From != TierWarm || r.To != TierCold || r.StillResident != 0 || r.Reason != EvictRequest {
		t.Fatalf("eviction: got %+v, want warm->cold, request, nothing still resident", r)
	}
	s := fx.m.Stats()
	if s.Hits != 1 || s.Faults[TierNone] != 1 || s.Evictions != 1 || s.LockedBytes != 0 {
		t.Fatalf("stats: got hits %d cold misses %d evictions %d locked %d, want 1 1 1 0", s.Hits, s.Faults[TierNone], s.Evictions, s.LockedBytes)
	}
}

func TestTierWalkAndPromotion(t *testing.T) {
	tests := []struct {
		name   string
		placed TierRole // where the page is put before PageIn; TierNone: nowhere
		target TierRole
		from   TierRole
		hit    bool
	}{
		{"cold miss to warm", TierNone, TierWarm, TierNone, false},
		{"bench to warm", TierBench, TierWarm, TierBench, false},
		{"cold to warm", TierCold, TierWarm, TierCold, false},
		{"warm is a hit", TierWarm, TierWarm, TierWarm, true},
		{"cold to bench", TierCold, TierBench, TierCold, false},
		{"bench is a hit for bench", TierBench, TierBench, TierBench, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := pattern(4*mib, 1)
			p := coldFile(t, "f", data)
			m, err := NewLocal(Config{Tiers: []TierStore{NewWarmStore(0), NewBenchStore(0)}, PageInTier: tt.target})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			id, err := m.RegisterArtifact(ArtifactSpec{Path: p})
			if err != nil {
				t.Fatal(err)
			}
			who, engine := NewPersonaID(), NewPersonaID()
			full := FullAccess
			for _, p := range []Persona{{ID: who}, {ID: engine, Access: &full}} {
				if err := m.RegisterPersona(p); err != nil {
					t.Fatal(err)
				}
			}
			ref := RangePage(id, mib, mib)
			ctx := context.Background()
			if tt.placed != TierNone {
				if err := m.PageOut(ctx, engine, ref, tt.placed); err != nil {
					t.Fatal(err)
				}
			}
			h, f, err := m.PageIn(ctx, who, ref)
			if err != nil {
				t.Fatal(err)
			}
			if tt.hit {
				if f != nil {
					t.Fatalf("got fault %+v, want a hit", *f)
				}
				return
			}
			if f == nil {
				t.Fatal("got a hit, want a fault")
			}
			if f.From != tt.from || f.To != tt.target || h.Tier != tt.target {
				t.Fatalf("got from %s to %s (handle %s), want from %s to %s", f.From, f.To, h.Tier, tt.from, tt.target)
			}
			if got := cachedBytes(t, p, mib, mib); got != mib {
				t.Fatalf("after promotion: mincore says %d resident, want %d", got, mib)
			}
			if s := m.Stats(); s.Faults[tt.from] != 1 {
				t.Fatalf("Stats.Faults[%s] = %d, want 1", tt.from, s.Faults[tt.from])
			}
		})
	}
}

func TestBenchIsResidentButNotLocked(t *testing.T) {
	fx := newFixture(t, 8*mib, []TierStore{NewWarmStore(0), NewBenchStore(0)}, ArtifactSpec{})
	ref := RangePage(fx.art, 0, 4*mib)
	before := lockedNow(t)
	fx.pageOut(t, ref, TierBench) // place a never-seen page in Bench: populate
	if got := cachedBytes(t, fx.path, 0, 4*mib); got != 4*mib {
		t.Fatalf("bench: mincore says %d resident, want %d", got, 4*mib)
	}
	if got := lockedNow(t) - before; got != 0 {
		t.Fatalf("bench: VmLck grew by %d, want 0", got)
	}
	if res, total, err := fx.m.Residency(ref); err != nil || res != total || total != 4*mib {
		t.Fatalf("Residency: got %d/%d, %v, want %d/%d", res, total, err, 4*mib, 4*mib)
	}
}

func TestPinnedPageSurvivesPageOut(t *testing.T) {
	fx := newFixture(t, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	ref := RangePage(fx.art, 0, mib)
	fx.pageIn(t, ref)
	if err := fx.m.Pin(fx.alice, ref); err != nil {
		t.Fatal(err)
	}
	err := fx.m.PageOut(context.Background(), fx.admin, ref, TierCold)
	wantErr(t, err, ErrPinned)
	if got := cachedBytes(t, fx.path, 0, mib); got != mib {
		t.Fatalf("pinned page after PageOut: got %d resident, want %d", got, mib)
	}
	if ws := fx.m.WorkingSet(); len(ws.Pages) != 1 || !ws.Pages[0].Pinned || ws.Pages[0].Tier != TierWarm {
		t.Fatalf("working set: got %+v, want one pinned warm page", ws.Pages)
	}
	if err := fx.m.Unpin(fx.alice, ref); err != nil {
		t.Fatal(err)
	}
	wantErr(t, fx.m.Unpin(fx.alice, ref), ErrNotPinned)
	fx.pageOut(t, ref, TierCold)
	if got := cachedBytes(t, fx.path, 0, mib); got != 0 {
		t.Fatalf("unpinned page after PageOut: got %d resident, want 0", got)
	}
}

func TestUnconfiguredTier(t *testing.T) {
	fx := newFixture(t, mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	for _, r := range []TierRole{TierFast, TierBench, TierFrozen, TierNone} {
		err := fx.m.PageOut(context.Background(), fx.admin, WholePage(fx.art), r)
		var ut *UnconfiguredTierError
		if !errors.As(err, &ut) || ut.Role != r || !errors.Is(err, ErrUnconfiguredTier) {
			t.Errorf("PageOut to %s: got %v, want *UnconfiguredTierError for %s", r, err, r)
		}
	}
	if _, err := NewLocal(Config{PageInTier: TierFast}); !errors.Is(err, ErrUnconfiguredTier) {
		t.Errorf("NewLocal with page-in tier fast: got %v, want ErrUnconfiguredTier", err)
	}
}

func TestBadPages(t *testing.T) {
	fx := newFixture(t, mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	tests := []struct {
		name string
		ref  PageRef
		want error
	}{
		{"range past end", RangePage(fx.art, mib-10, 20), ErrBadPage},
		{"negative offset", RangePage(fx.art, -1, 20), ErrBadPage},
		{"empty range", RangePage(fx.art, 0, 0), ErrBadPage},
		{"expert of a file without experts", ExpertPage(fx.art, 0, 0), ErrNoExperts},
		{"unknown artifact", WholePage(NewArtifactID()), ErrUnknownArtifact},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := fx.m.PageIn(context.Background(), fx.alice, tt.ref)
			wantErr(t, err, tt.want)
		})
	}
}

// TestLongRangeNoReadAround pages in a range several read-ahead windows
// long with file bytes on both sides, and checks with mincore that nothing
// outside it was read.
func TestLongRangeNoReadAround(t *testing.T) {
	const size = 48 * mib
	fx := newFixture(t, size, []TierStore{NewWarmStore(0), NewBenchStore(0)}, ArtifactSpec{})
	off, n := 8*int64(mib), 32*int64(mib)
	for _, to := range []TierRole{TierWarm, TierBench} {
		if to == TierBench {
			n -= int64(pageSize) // a different, never-placed page
		}
		ref := RangePage(fx.art, off, n)
		if to == TierWarm {
			fx.pageIn(t, ref)
		} else {
			fx.pageOut(t, ref, TierBench)
		}
		if got := cachedBytes(t, fx.path, off, n); got != n {
			t.Fatalf("%s: range %d of %d resident", to, got, n)
		}
		before, after := cachedBytes(t, fx.path, 0, off), cachedBytes(t, fx.path, off+n, size-off-n)
		if before != 0 || after != 0 {
			t.Fatalf("%s: read around the range: %d bytes before, %d after, want 0", to, before, after)
		}
		fx.pageOut(t, ref, TierCold)
	}
}

// fileMappings counts the runs of /proc/self/maps that map the file at p.
func fileMappings(tb testing.TB, p string) int {
	tb.Helper()
	maj, mnr, ino, err := fileID(openTB(tb, p))
	if err != nil {
		tb.Fatal(err)
	}
	var s mapsScanner
	text, err := s.read()
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	if err := s.runs(text, func(r fileRun) {
		if r.ino == ino && r.maj == maj && r.min == mnr {
			n++
		}
	}); err != nil {
		tb.Fatal(err)
	}
	return n
}

// TestCloseRetiresHandles keeps a handle and its slices across Close:
// reading them afterwards must not fault (before, Close unmapped the file
// under them), the handle must say it is no longer valid, and no mapping of
// either file may be left, whether or not a handle was handed out over it.
func TestCloseRetiresHandles(t *testing.T) {
	fx := newFixture(t, 2*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	other := coldFile(t, "other.bin", pattern(mib, 5))
	if _, err := fx.m.RegisterArtifact(ArtifactSpec{Path: other}); err != nil {
		t.Fatal(err)
	}
	h, _ := fx.pageIn(t, RangePage(fx.art, 0, mib))
	fx.checkBytes(t, h)
	if !h.Valid() {
		t.Fatal("Valid before Close: got false, want true")
	}
	stale := h.Bytes()[0]
	for _, p := range []string{fx.path, other} {
		if got := fileMappings(t, p); got != 1 {
			t.Fatalf("before Close: %s mapped %d times, want once", p, got)
		}
	}
	if err := fx.m.Close(); err != nil {
		t.Fatal(err)
	}
	if h.Valid() || h.Bytes() != nil {
		t.Fatalf("after Close: got Valid %v, %d byte slices; want false, none", h.Valid(), len(h.Bytes()))
	}
	for i, b := range stale {
		if b != 0 {
			t.Fatalf("after Close: stale slice byte %d is %#x, want 0 (the poisoned range)", i, b)
		}
	}
	for _, p := range []string{fx.path, other} {
		if got := fileMappings(t, p); got != 0 {
			t.Fatalf("after Close: %s still mapped %d times, want 0", p, got)
		}
	}
	if (PageHandle{}).Valid() {
		t.Fatal("zero handle: Valid got true, want false")
	}
}
