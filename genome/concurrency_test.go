package genome

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
)

// TestConcurrentPageInPageOut hammers one manager from many goroutines
// with page-ins, page-outs, pins and snapshots, then checks that the
// accounting agrees with the pages and the kernel: mincore for residency,
// and VmLck, the kernel's count of this process's mlock'd bytes, for the
// Warm tier (the pages do not share OS pages, so the two must be equal).
func TestConcurrentPageInPageOut(t *testing.T) {
	const (
		pg    = 64 << 10
		pages = 32
		gor   = 8
		ops   = 300
	)
	fx := newFixture(t, pages*pg, []TierStore{NewWarmStore(6 * pg), NewBenchStore(6 * pg)}, ArtifactSpec{})
	ctx := context.Background()
	lockedBefore := lockedNow(t)
	ref := func(i int) PageRef { return RangePage(fx.art, int64(i)*pg, pg) }
	var wg sync.WaitGroup
	errs := make(chan error, gor)
	for g := range gor {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, 1))
			for range ops {
				p := ref(r.IntN(pages))
				var err error
				switch k := r.IntN(10); {
				case k < 6:
					var h PageHandle
					if h, _, err = fx.m.PageIn(ctx, fx.alice, p); err != nil {
						break
					}
					// Read the bytes only while a pin keeps the page where
					// it is: a read of a page another goroutine has just
					// paged out would fault it back into the page cache,
					// behind the genome's back, and the Cold check below
					// would see it.
					if err = fx.m.Pin(fx.alice, p); err != nil {
						break
					}
					if fx.m.TierOf(p).Resident() && h.Bytes()[0][0] != fx.data[p.Offset.Off] {
						err = errors.New("handle bytes differ from the file")
					}
					if uerr := fx.m.Unpin(fx.alice, p); err == nil {
						err = uerr
					}
				case k < 8:
					err = fx.m.PageOut(ctx, fx.admin, p, []TierRole{TierBench, TierCold}[r.IntN(2)])
				case k < 9:
					if err = fx.m.Pin(fx.alice, p); err == nil {
						err = fx.m.Unpin(fx.alice, p)
					}
				default:
					_ = fx.m.WorkingSet()
					_ = fx.m.Stats()
				}
				if err != nil && !errors.Is(err, ErrPinned) && !errors.Is(err, ErrBadPage) && !errors.Is(err, ErrNoEvictionCandidate) {
					errs <- err
					return
				}
			}
		}(uint64(g))
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ws := fx.m.WorkingSet()
	for _, r := range []TierRole{TierWarm, TierBench} {
		c, _ := ws.CapacityOf(r)
		if c.Used != ws.Bytes(r) {
			t.Errorf("%s: capacity used %d, pages sum to %d", r, c.Used, ws.Bytes(r))
		}
		if c.Used > c.Limit {
			t.Errorf("%s: used %d over limit %d", r, c.Used, c.Limit)
		}
	}
	for _, p := range ws.Pages {
		res, total, err := fx.m.Residency(p.Ref)
		if err != nil {
			t.Fatal(err)
		}
		if p.Tier == TierWarm && res != total {
			t.Errorf("warm page %s: mincore %d of %d resident", p.Ref, res, total)
		}
		if p.Tier == TierCold && res != 0 {
			t.Errorf("cold page %s: mincore %d resident, want 0", p.Ref, res)
		}
	}
	if got, want := lockedNow(t)-lockedBefore, ws.Bytes(TierWarm); got != want {
		t.Errorf("VmLck grew by %d, want the %d bytes of the warm pages", got, want)
	}
	if err := fx.m.Close(); err != nil {
		t.Fatal(err)
	}
	if got := lockedNow(t) - lockedBefore; got != 0 {
		t.Errorf("after Close: VmLck %+d bytes from the start, want 0", got)
	}
}
