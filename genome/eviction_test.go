package genome

import (
	"context"
	"errors"
	"testing"
)

// TestEvictionUnderFullWarm fills a Warm tier of three pages and checks
// that LRU picks the least recently used page, that it moves to Bench, and
// that a full Bench pushes its own victim to Cold, really evicted.
func TestEvictionUnderFullWarm(t *testing.T) {
	const pg = mib
	fx := newFixture(t, 8*pg, []TierStore{NewWarmStore(3 * pg), NewBenchStore(2 * pg)}, ArtifactSpec{})
	p := func(i int64) PageRef { return RangePage(fx.art, i*pg, pg) }

	for i := range int64(3) {
		fx.pageIn(t, p(i)) // warm: 0 1 2
	}
	fx.pageIn(t, p(0)) // 0 is now the most recent; 1 is least recent
	fx.pageIn(t, p(3)) // evicts 1 to bench
	fx.pageIn(t, p(4)) // evicts 2 to bench
	fx.pageIn(t, p(5)) // evicts 0 to bench, which is full: bench evicts by sampled LFU to cold

	ws := fx.m.WorkingSet()
	tierOf := map[PageRef]TierRole{}
	for _, rp := range ws.Pages {
		tierOf[rp.Ref] = rp.Tier
	}
	for _, i := range []int64{3, 4, 5} {
		if tierOf[p(i)] != TierWarm {
			t.Errorf("page %d: got tier %s, want warm", i, tierOf[p(i)])
		}
	}
	if c, _ := ws.CapacityOf(TierWarm); c.Used != 3*pg {
		t.Errorf("warm used: got %d, want %d", c.Used, 3*pg)
	}
	if c, _ := ws.CapacityOf(TierBench); c.Used > 2*pg {
		t.Errorf("bench used: got %d, want at most %d", c.Used, 2*pg)
	}
	var cold []int64
	for _, i := range []int64{0, 1, 2} {
		switch tierOf[p(i)] {
		case TierBench:
			if got := cachedBytes(t, fx.path, i*pg, pg); got != pg {
				t.Errorf("bench page %d: mincore %d resident, want %d", i, got, pg)
			}
		case TierCold:
			cold = append(cold, i)
			if got := cachedBytes(t, fx.path, i*pg, pg); got != 0 {
				t.Errorf("cold page %d: mincore %d resident, want 0", i, got)
			}
		default:
			t.Errorf("page %d: got tier %s, want bench or cold", i, tierOf[p(i)])
		}
	}
	if len(cold) != 1 {
		t.Fatalf("got %d pages in cold (%v), want 1", len(cold), cold)
	}

	fx.flush(t)
	var order []PageRef
	for _, e := range fx.rec.byKey(KeyEviction) {
		r := e.(EvictionRecord)
		if r.Reason != EvictCapacity {
			t.Errorf("eviction %+v: got reason %s, want capacity", r, r.Reason)
		}
		if r.From == TierWarm {
			order = append(order, r.Page)
			if r.Policy != PolicyCycle { // range pages, so by recency
				t.Errorf("warm eviction: got policy %s, want cycle", r.Policy)
			}
		}
		if r.To == TierCold && r.StillResident != 0 {
			t.Errorf("eviction to cold of %s: %d bytes still resident, want 0", r.Page, r.StillResident)
		}
	}
	want := []PageRef{p(1), p(2), p(0)}
	if len(order) != len(want) {
		t.Fatalf("warm victims: got %v, want %v", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("warm victim %d: got %s, want %s", i, order[i], want[i])
		}
	}
}

func TestAllPinnedGivesNoEvictionCandidate(t *testing.T) {
	const pg = mib
	fx := newFixture(t, 4*pg, []TierStore{NewWarmStore(2 * pg)}, ArtifactSpec{})
	for i := range int64(2) {
		ref := RangePage(fx.art, i*pg, pg)
		fx.pageIn(t, ref)
		if err := fx.m.Pin(fx.alice, ref); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := fx.m.PageIn(context.Background(), fx.alice, RangePage(fx.art, 2*pg, pg))
	var ne *NoEvictionCandidateError
	if !errors.As(err, &ne) || !errors.Is(err, ErrNoEvictionCandidate) {
		t.Fatalf("got %v, want *NoEvictionCandidateError", err)
	}
	if ne.Role != TierWarm || ne.Pinned != 2*pg || ne.Need != pg {
		t.Fatalf("got %+v, want warm, 2 MiB pinned, 1 MiB needed", ne)
	}
	if got := cachedBytes(t, fx.path, 2*pg, pg); got != 0 {
		t.Fatalf("refused page: got %d resident, want 0", got)
	}
	_, _, err = fx.m.PageIn(context.Background(), fx.alice, RangePage(fx.art, 0, 3*pg))
	wantErr(t, err, ErrPageTooLarge)
}

// TestBenchAdmission checks sampled LFU's admission rule: a page demoted
// from Warm that was used less often than Bench's victim skips Bench.
func TestBenchAdmission(t *testing.T) {
	const pg = mib
	fx := newFixture(t, 4*pg, []TierStore{NewWarmStore(pg), NewBenchStore(pg)}, ArtifactSpec{})
	hot, cold1, cold2 := RangePage(fx.art, 0, pg), RangePage(fx.art, pg, pg), RangePage(fx.art, 2*pg, pg)
	for range 5 {
		fx.pageIn(t, hot) // one fault, four hits
	}
	fx.pageIn(t, cold1) // hot (5 uses) -> bench
	fx.pageIn(t, cold2) // cold1 (1 use) -> would displace hot in bench: rejected, goes to cold
	tiers := map[PageRef]TierRole{}
	for _, rp := range fx.m.WorkingSet().Pages {
		tiers[rp.Ref] = rp.Tier
	}
	if tiers[hot] != TierBench || tiers[cold1] != TierCold || tiers[cold2] != TierWarm {
		t.Fatalf("got hot %s, cold1 %s, cold2 %s; want bench, cold, warm", tiers[hot], tiers[cold1], tiers[cold2])
	}
}

// TestOverlappingPagesKeepSharedBytes pages in two ranges that share an OS
// page; evicting one must not drop the page the other still holds.
func TestOverlappingPagesKeepSharedBytes(t *testing.T) {
	fx := newFixture(t, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	a := RangePage(fx.art, 0, mib+100) // ends inside OS page mib/ps
	b := RangePage(fx.art, mib+200, mib)
	fx.pageIn(t, a)
	fx.pageIn(t, b)
	fx.pageOut(t, a, TierCold)
	shared := alignDown(mib + 100)
	if got := cachedBytes(t, fx.path, shared, int64(pageSize)); got != int64(pageSize) {
		t.Fatalf("shared OS page: got %d resident, want %d", got, pageSize)
	}
	if got := cachedBytes(t, fx.path, 0, shared); got != 0 {
		t.Fatalf("a's own bytes: got %d resident, want 0", got)
	}
	if got, want := lockedNow(t), alignUp(2*mib+200)-shared; got < want {
		t.Fatalf("VmLck %d, want at least %d (b still locked)", got, want)
	}
}

// TestPromotionWithTwoVictims: promoting a page out of a full Bench into
// a full Warm that must give up two pages for it. Both victims go down
// into Bench, where the promoted page's bytes count as free, but only
// once: the second victim must make room of its own. (Counting Bench as
// merely full, not as over its limit, let it end over by a page.) The
// manager and the simulator both.
func TestPromotionWithTwoVictims(t *testing.T) {
	pg := int64(pageSize)
	x, a, b := 0, 1, 2 // pages of 2, 1 and 2 OS pages
	offs, sizes := []int64{0, 2 * pg, 3 * pg}, []int64{2 * pg, pg, 2 * pg}
	fx := newFixture(t, 5*pg, []TierStore{NewWarmStore(3 * pg), NewBenchStore(2 * pg)}, ArtifactSpec{})
	sim, err := NewPolicySim(TierNone, SimTier{TierWarm, 3 * pg}, SimTier{TierBench, 2 * pg})
	if err != nil {
		t.Fatal(err)
	}
	// Warm: x, a; then b sends x to Bench; then x comes back, and Warm
	// gives up a (LRU), which is not enough, and b.
	for _, i := range []int{x, a, b, x} {
		fx.pageIn(t, RangePage(fx.art, offs[i], sizes[i]))
		if _, err := sim.Access(i, sizes[i]); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []TierRole{TierWarm, TierBench} {
		c, _ := fx.m.WorkingSet().CapacityOf(r)
		if c.Used > c.Limit {
			t.Errorf("manager: %s holds %d bytes, over its limit of %d", r, c.Used, c.Limit)
		}
		if u := sim.Used(r); u > c.Limit {
			t.Errorf("simulator: %s holds %d bytes, over its limit of %d", r, u, c.Limit)
		}
	}
	if got := fx.m.TierOf(RangePage(fx.art, 0, 2*pg)); got != TierWarm {
		t.Errorf("promoted page in %s, want warm", got)
	}
}

// TestPageInFallsBelowWarm: a page Warm cannot take — larger than the
// tier (a small RLIMIT_MEMLOCK), or with every byte of Warm pinned — is
// paged into Bench instead of the page-in failing, and served from there
// on the next access. Without a Bench tier the page-in fails as before.
func TestPageInFallsBelowWarm(t *testing.T) {
	fx := newFixture(t, 8*mib, []TierStore{NewWarmStore(mib), NewBenchStore(6 * mib)}, ArtifactSpec{})
	big := RangePage(fx.art, 2*mib, 2*mib)
	h, f := fx.pageIn(t, big)
	if h.Tier != TierBench || f == nil || f.To != TierBench {
		t.Fatalf("page larger than Warm: handle in %s, fault %+v; want Bench", h.Tier, f)
	}
	if h2, f2 := fx.pageIn(t, big); h2.Tier != TierBench || f2 != nil {
		t.Errorf("second access: handle in %s, fault %+v; want a hit in Bench", h2.Tier, f2)
	}
	pinned := RangePage(fx.art, 0, mib)
	fx.pageIn(t, pinned)
	if err := fx.m.Pin(fx.alice, pinned); err != nil {
		t.Fatal(err)
	}
	small := RangePage(fx.art, 5*mib, mib/2)
	if h, _ := fx.pageIn(t, small); h.Tier != TierBench {
		t.Errorf("Warm all pinned: handle in %s, want Bench", h.Tier)
	}
	if got := fx.m.TierOf(pinned); got != TierWarm {
		t.Errorf("the pinned page is in %s, want warm", got)
	}

	only := newFixture(t, 8*mib, []TierStore{NewWarmStore(mib)}, ArtifactSpec{})
	_, _, err := only.m.PageIn(context.Background(), only.alice, RangePage(only.art, 2*mib, 2*mib))
	wantErr(t, err, ErrPageTooLarge)
}
