package genome

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// TestPolicySimMatchesLocal replays the same page-ins through a real
// manager (stores, mlock, the page cache) and through a PolicySim, and
// after every access compares the fault (none, or its From tier) and the
// tier of every page. Bench holds at most five pages, so sampled LFU's
// sample of five is the whole tier and both sides pick the same victim;
// the tests below that drive larger tiers cannot compare victim by victim.
func TestPolicySimMatchesLocal(t *testing.T) {
	pg := int64(pageSize)
	tests := []struct {
		name        string
		warm, bench int64 // pages; 0: tier absent
		pages       int
		experts     bool // expert pages of 4 layers, asked for layer by layer as a decode does
	}{
		{"warm 2 bench 3", 2, 3, 12, false},
		{"warm 3 bench 5", 3, 5, 16, false},
		{"warm 1 bench 1", 1, 1, 6, false},
		{"bench only", 0, 4, 10, false},
		{"warm only", 4, 0, 10, false},
		{"experts warm 6 bench 4", 6, 4, 32, true},
		{"experts warm only", 9, 0, 32, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stores []TierStore
			var tiers []SimTier
			if tt.warm > 0 {
				stores = append(stores, NewWarmStore(tt.warm*pg))
				tiers = append(tiers, SimTier{TierWarm, tt.warm * pg})
			}
			if tt.bench > 0 {
				stores = append(stores, NewBenchStore(tt.bench*pg))
				tiers = append(tiers, SimTier{TierBench, tt.bench * pg})
			}
			const layers = 4
			perLayer := tt.pages / layers
			var spec ArtifactSpec
			if tt.experts {
				spec = ArtifactSpec{Layers: layers, ExpertCount: perLayer, Experts: func(l, e int) ([]Extent, error) {
					return []Extent{{Off: int64(l*perLayer+e) * pg, Len: pg}}, nil
				}}
			}
			fx := newFixture(t, int64(tt.pages)*pg, stores, spec)
			sim, err := NewPolicySim(TierNone, tiers...)
			if err != nil {
				t.Fatal(err)
			}
			if sim.PageInTier() != fx.m.PageInTier() {
				t.Fatalf("page-in tier: got %s, want %s", sim.PageInTier(), fx.m.PageInTier())
			}
			ref := func(i int) PageRef { return RangePage(fx.art, int64(i)*pg, pg) }
			r := rand.New(rand.NewPCG(9, uint64(tt.pages)))
			zipf := rand.NewZipf(r, 1.1, 2, uint64(tt.pages-1))
			next := func(n int) int { return int(zipf.Uint64()) }
			if tt.experts {
				ref = func(i int) PageRef { return ExpertPage(fx.art, i/perLayer, i%perLayer) }
				zipf = rand.NewZipf(r, 1.1, 2, uint64(perLayer-1))
				var prev int
				next = func(n int) int { // two distinct experts per layer visit
					e := int(zipf.Uint64())
					if n%2 == 1 && e == prev {
						e = (e + 1) % perLayer
					}
					prev = e
					return (n/2%layers)*perLayer + e
				}
			}
			access := func(i int) (SimAccess, error) {
				if tt.experts {
					return sim.AccessExpert(i, i/perLayer, i%perLayer, pg)
				}
				return sim.Access(i, pg)
			}
			var hits, benchFaults int
			for n := range 400 {
				i := next(n)
				_, f := fx.pageIn(t, ref(i))
				a, err := access(i)
				if err != nil {
					t.Fatalf("access %d (page %d): %v", n, i, err)
				}
				switch {
				case f == nil && !a.Hit:
					t.Fatalf("access %d (page %d): manager hit, sim faulted from %s", n, i, a.From)
				case f != nil && a.Hit:
					t.Fatalf("access %d (page %d): manager faulted from %s, sim hit in %s", n, i, f.From, a.From)
				case f != nil && f.From != a.From:
					t.Fatalf("access %d (page %d): got From %s, want %s", n, i, a.From, f.From)
				}
				if a.Hit {
					hits++
				} else if a.From == TierBench {
					benchFaults++
				}
				for j := range tt.pages {
					want := TierNone
					if st := fx.m.pages[ref(j)]; st != nil {
						want = st.tier
					}
					if got := sim.Tier(j); got != want {
						t.Fatalf("after access %d (page %d): page %d in %s, want %s", n, i, j, got, want)
					}
				}
			}
			for _, r := range []TierRole{TierWarm, TierBench} {
				if c, ok := fx.m.WorkingSet().CapacityOf(r); ok && c.Used != sim.Used(r) {
					t.Errorf("tier %s: sim uses %d bytes, manager %d", r, sim.Used(r), c.Used)
				}
			}
			if hits == 0 || hits == 400 {
				t.Errorf("got %d hits of 400; want a replay that both hits and misses", hits)
			}
			if tt.warm > 0 && tt.bench > 0 && benchFaults == 0 {
				t.Errorf("no fault was served from Bench; the replay does not exercise demotion")
			}
		})
	}
}

// TestPolicySimBudget checks BudgetSim's split, a replay within it
// (never more than the budget resident, every page resident after its
// access) and the errors.
func TestPolicySimBudget(t *testing.T) {
	pg := int64(pageSize)
	if _, err := BudgetSim(pg - 1); !errors.Is(err, ErrBudgetTooSmall) {
		t.Errorf("BudgetSim(%d): got %v, want ErrBudgetTooSmall", pg-1, err)
	}
	s, err := BudgetSim(9*pg + 100)
	if err != nil {
		t.Fatal(err)
	}
	if s.PageInTier() != TierWarm || s.limit[TierWarm] != 4*pg || s.limit[TierBench] != 5*pg {
		t.Fatalf("BudgetSim(9 pages + 100): got page-in %s, warm %d, bench %d; want warm, %d, %d",
			s.PageInTier(), s.limit[TierWarm], s.limit[TierBench], 4*pg, 5*pg)
	}
	one, err := BudgetSim(pg)
	if err != nil {
		t.Fatal(err)
	}
	if one.PageInTier() != TierBench || one.present[TierWarm] {
		t.Errorf("BudgetSim(one page): got page-in %s, warm present %v; want bench and no warm", one.PageInTier(), one.present[TierWarm])
	}

	r := rand.New(rand.NewPCG(1, 2))
	for n := range 5000 {
		i := r.IntN(64)
		a, err := s.Access(i, pg)
		if err != nil {
			t.Fatal(err)
		}
		if a.Hit != (a.From == TierWarm) {
			t.Fatalf("access %d: hit %v from %s", n, a.Hit, a.From)
		}
		if a.Read != a.From {
			t.Fatalf("access %d: read from %s, found in %s (a promoted page was pushed down first)", n, a.Read, a.From)
		}
		if s.Tier(i) != TierWarm {
			t.Fatalf("access %d: page %d in %s after its access, want warm", n, i, s.Tier(i))
		}
		if w, b := s.Used(TierWarm), s.Used(TierBench); w > 4*pg || b > 5*pg {
			t.Fatalf("access %d: warm %d, bench %d bytes, over the limits", n, w, b)
		}
	}

	if _, err := s.Access(3, pg+1); !errors.Is(err, ErrBadPage) {
		t.Errorf("cost change: got %v, want ErrBadPage", err)
	}
	if _, err := s.Access(-1, pg); !errors.Is(err, ErrBadPage) {
		t.Errorf("negative page: got %v, want ErrBadPage", err)
	}
	if _, err := s.Access(1000, 0); !errors.Is(err, ErrBadPage) {
		t.Errorf("zero cost: got %v, want ErrBadPage", err)
	}
	if _, err := s.Access(1001, 5*pg); !errors.Is(err, ErrPageTooLarge) {
		t.Errorf("page larger than warm: got %v, want ErrPageTooLarge", err)
	}
	if s.Tier(1001) != TierNone {
		t.Errorf("a page too large for warm: got tier %s, want none", s.Tier(1001))
	}
	for _, bad := range [][]SimTier{{{TierCold, 1}}, {{TierWarm, 1}, {TierWarm, 2}}, {{TierBench, -1}}} {
		if _, err := NewPolicySim(TierNone, bad...); err == nil {
			t.Errorf("NewPolicySim(%v): got no error", bad)
		}
	}
	if _, err := NewPolicySim(TierFast, SimTier{TierWarm, pg}); !errors.Is(err, ErrUnconfiguredTier) {
		t.Errorf("page-in to an absent tier: got %v, want ErrUnconfiguredTier", err)
	}
}

// TestWarmShare checks the Budget split (see WarmShare), and that a Bench
// tier is never given a limit of 0, which reads as none.
func TestWarmShare(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct{ budget, cycle, want int64 }{
		{1024 * mib, 0, 512 * mib}, // no cycle: half
		{1024 * mib, 357 * mib, 1024 * mib},
		{300 * mib, 357 * mib, 300 * mib},
		{9, 0, 4},
		{8, 7, 8},
	} {
		if got := WarmShare(tc.budget, tc.cycle); got != tc.want {
			t.Errorf("WarmShare(%d, %d) = %d, want %d", tc.budget, tc.cycle, got, tc.want)
		}
	}
	pg := int64(pageSize)
	for _, tc := range []struct{ budget, cycle int64 }{{pg, pg}, {2 * pg, 2 * pg}, {3 * pg, 2 * pg}, {9 * pg, 5 * pg}, {512 << 20, 357 << 20}, {400 << 20, 357 << 20}} {
		s, err := BudgetSimFor(tc.budget, tc.cycle)
		if err != nil {
			t.Fatal(err)
		}
		if s.present[TierBench] && s.limit[TierBench] == 0 {
			t.Errorf("BudgetSimFor(%d, %d): Bench with no limit", tc.budget, tc.cycle)
		}
		if got := s.limit[TierWarm] + s.limit[TierBench]; got > tc.budget {
			t.Errorf("BudgetSimFor(%d, %d): tiers hold %d bytes", tc.budget, tc.cycle, got)
		}
		tiers, err := BudgetFor(tc.budget, tc.cycle)
		if err != nil {
			t.Fatal(err)
		}
		var sum int64
		for _, ts := range tiers {
			c := ts.Capacity()
			if c.Role == TierBench && c.Limit == 0 {
				t.Errorf("BudgetFor(%d, %d): Bench with no limit", tc.budget, tc.cycle)
			}
			if c.Role == TierWarm || c.Role == TierBench {
				sum += c.Limit
			}
		}
		if sum > tc.budget {
			t.Errorf("BudgetFor(%d, %d): tiers hold %d bytes", tc.budget, tc.cycle, sum)
		}
	}
}
