package genome

import (
	"testing"
)

// TestPromoteSwapsWithBench: a page moving from a full Bench up to a full
// Warm swaps places with Warm's victim. Before the fix the victim was
// pushed into Bench while the promoted page still counted there, so a
// full Bench dropped a page to Cold — here the only candidate, the very
// page being promoted — and the promotion read it back from disk.
func TestPromoteSwapsWithBench(t *testing.T) {
	tests := []struct {
		name        string
		warm, bench int64 // pages of mib
		before      []int64
		promote     int64
		warmAfter   []int64
		benchAfter  []int64
	}{
		// warm [1] bench [0]: 0 up, 1 down.
		{"one and one", 1, 1, []int64{0, 1}, 0, []int64{0}, []int64{1}},
		// warm [2 3] bench [0 1]: 0 up, 2 (least recent) down.
		{"two and two", 2, 2, []int64{0, 1, 2, 3}, 0, []int64{0, 3}, []int64{1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t, 8*mib, []TierStore{NewWarmStore(tt.warm * mib), NewBenchStore(tt.bench * mib)}, ArtifactSpec{})
			p := func(i int64) PageRef { return RangePage(fx.art, i*mib, mib) }
			for _, i := range tt.before {
				fx.pageIn(t, p(i))
			}
			fx.flush(t)
			evictionsBefore := len(fx.rec.byKey(KeyEviction))
			h, f := fx.pageIn(t, p(tt.promote))
			if f == nil || f.From != TierBench {
				t.Fatalf("page %d: got fault %+v, want one from bench", tt.promote, f)
			}
			fx.checkBytes(t, h)
			fx.flush(t)
			for _, ev := range fx.rec.byKey(KeyEviction)[evictionsBefore:] {
				r := ev.(EvictionRecord)
				if r.To == TierCold {
					t.Errorf("promotion evicted %s from %s to cold; want a swap with nothing dropped", r.Page, r.From)
				}
			}
			ws := fx.m.WorkingSet()
			tierOf := map[PageRef]TierRole{}
			for _, rp := range ws.Pages {
				tierOf[rp.Ref] = rp.Tier
			}
			for want, pages := range map[TierRole][]int64{TierWarm: tt.warmAfter, TierBench: tt.benchAfter} {
				for _, i := range pages {
					if got := tierOf[p(i)]; got != want {
						t.Errorf("page %d: got tier %s, want %s", i, got, want)
					}
					if got := cachedBytes(t, fx.path, i*mib, mib); got != mib {
						t.Errorf("page %d (%s): mincore %d resident, want %d", i, want, got, mib)
					}
				}
			}
			for _, r := range []TierRole{TierWarm, TierBench} {
				c, _ := ws.CapacityOf(r)
				if lim := fx.m.Store(r).Capacity().Limit; c.Used != lim {
					t.Errorf("tier %s: got %d bytes used, want %d (full)", r, c.Used, lim)
				}
			}
		})
	}
}
