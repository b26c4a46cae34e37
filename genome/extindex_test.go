package genome

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestExtentIndexMatchesWalk checks the index against the walk it
// replaces: for random pages (short, wide, several extents each) and
// random windows, it finds exactly the pages overlaps finds, each once.
func TestExtentIndexMatchesWalk(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 50 {
		var x extentIndex
		var pages []*pageState
		for range 1 + rng.IntN(200) {
			st := &pageState{}
			for range 1 + rng.IntN(3) {
				n := int64(1+rng.IntN(64)) << 12
				if rng.IntN(20) == 0 {
					n = wideExtent + int64(rng.IntN(4))<<20
				}
				st.ext = append(st.ext, Extent{Off: int64(rng.IntN(1<<14)) << 12, Len: n})
			}
			pages = append(pages, st)
			x.add(st)
		}
		for range 20 {
			var win []Extent
			for range 1 + rng.IntN(3) {
				win = append(win, Extent{Off: int64(rng.IntN(1<<14)) << 12, Len: int64(1+rng.IntN(512)) << 12})
			}
			got := x.appendOverlapping(nil, win)
			var want []*pageState
			for _, st := range pages {
				if overlaps(st.ext, win) {
					want = append(want, st)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("round %d: %d pages overlap %v, index found %d", round, len(want), win, len(got))
			}
			for _, st := range want {
				if !slices.Contains(got, st) {
					t.Fatalf("round %d: index missed a page with extents %v overlapping %v", round, st.ext, win)
				}
			}
		}
	}
}
