package genome

import (
	"context"
	"testing"
)

// TestPageInToAllocatesNothing: with the pprof profiles off and no
// publisher, a page-in through PageInTo allocates nothing in steady
// state, whether it hits, faults from Bench (a swap with Warm's victim)
// or faults from Cold (two evictions on the way); PageIn allocates only
// the PageFault it returns.
func TestPageInToAllocatesNothing(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage counters allocate")
	}
	pg := int64(pageSize)
	for _, tc := range []struct {
		name        string
		warm, bench int64 // pages
		pages       int
		from        TierRole // TierNone: every access hits
	}{{"hit", 8, 0, 4, TierNone}, {"from bench", 2, 6, 8, TierBench}, {"from cold", 2, 2, 8, TierCold}} {
		t.Run(tc.name, func(t *testing.T) {
			tiers := []TierStore{NewWarmStore(tc.warm * pg)}
			if tc.bench > 0 {
				tiers = append(tiers, NewBenchStore(tc.bench*pg))
			}
			l0, f0 := lockedProfile.Count(), faultProfile.Count()
			fx := newFixtureConfig(t, int64(tc.pages)*pg, Config{Tiers: tiers, NoProfiles: true}, ArtifactSpec{})
			defer func() {
				if l, f := lockedProfile.Count(), faultProfile.Count(); l != l0 || f != f0 {
					t.Errorf("NoProfiles: profiles went from %d locked, %d faults to %d, %d", l0, f0, l, f)
				}
			}()
			fx.m.SetPublisher(nil)
			ctx := context.Background()
			refs := make([]PageRef, tc.pages)
			for i := range refs {
				refs[i] = RangePage(fx.art, int64(i)*pg, pg)
			}
			for range 3 {
				for _, r := range refs {
					fx.pageIn(t, r)
				}
			}
			var f PageFault
			i, bad := 0, ""
			access := func() {
				f = PageFault{}
				_, faulted, err := fx.m.PageInTo(ctx, fx.alice, refs[i], &f)
				if err != nil || faulted != (tc.from != TierNone) || f.From != tc.from {
					bad = "unexpected page-in"
				}
				i = (i + 1) % len(refs)
			}
			if n := testing.AllocsPerRun(200, access); n != 0 || bad != "" {
				t.Errorf("PageInTo: got %v allocations per page-in (%s), want 0", n, bad)
			}
			if tc.from == TierNone {
				return
			}
			pageIn := func() {
				if _, fp, err := fx.m.PageIn(ctx, fx.alice, refs[i]); err != nil || fp == nil {
					bad = "no fault"
				}
				i = (i + 1) % len(refs)
			}
			if n := testing.AllocsPerRun(200, pageIn); n != 1 || bad != "" {
				t.Errorf("PageIn: got %v allocations per fault (%s), want 1 (the PageFault)", n, bad)
			}
		})
	}
}
