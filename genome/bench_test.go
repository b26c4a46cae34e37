package genome

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkPageInHit is the resident fast path: a Warm page paged in again.
func BenchmarkPageInHit(b *testing.B) {
	fx := newFixture(b, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	ref := RangePage(fx.art, 0, mib)
	fx.pageIn(b, ref)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, f, err := fx.m.PageIn(ctx, fx.alice, ref); err != nil || f != nil {
			b.Fatalf("got fault %v, err %v, want a hit", f, err)
		}
	}
}

// BenchmarkPageInHitParallel is the fast path from every P at once.
func BenchmarkPageInHitParallel(b *testing.B) {
	fx := newFixture(b, 4*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	ref := RangePage(fx.art, 0, mib)
	fx.pageIn(b, ref)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, f, err := fx.m.PageIn(ctx, fx.alice, ref); err != nil || f != nil {
				b.Errorf("got fault %v, err %v, want a hit", f, err)
				return
			}
		}
	})
}

// BenchmarkColdToWarm measures a Cold -> Warm page-in of 64 MiB against a
// plain sequential read (1 MiB pread calls) of the same evicted bytes, in
// the same iteration, and reports the throughput ratio (goal >= 0.8).
// "whole" is a whole file; "interior" a 48 MiB range with file bytes on
// both sides, where the edges are prefetched exactly to avoid read-around;
// "attached" the same range through an attached mapping like llama.cpp's,
// whose aligned 2 MiB blocks are faulted in whole (hugeBlocks) where THP
// allows.
func BenchmarkColdToWarm(b *testing.B) {
	const size = 64 * mib
	for _, tc := range []struct {
		name    string
		off, ln int64
		attach  bool
	}{{"whole", 0, size, false}, {"interior", 8 * mib, 48 * mib, false}, {"attached", 8*mib + 4096, 48 * mib, true}} {
		b.Run(tc.name, func(b *testing.B) {
			fx := newFixture(b, size, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
			if tc.attach {
				alignedForeignMap(b, fx.path, size)
				if _, err := fx.m.AttachMappings(fx.art); err != nil {
					b.Fatal(err)
				}
			}
			ref := RangePage(fx.art, tc.off, tc.ln)
			if tc.off == 0 && tc.ln == size {
				ref = WholePage(fx.art)
			}
			f, err := os.Open(fx.path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, mib)
			ctx := context.Background()
			var readT, pageT time.Duration
			b.ReportAllocs()
			b.SetBytes(tc.ln)
			for b.Loop() {
				fx.pageOut(b, WholePage(fx.art), TierCold)
				t0 := time.Now()
				for o := tc.off; o < tc.off+tc.ln; o += mib {
					if _, err := f.ReadAt(buf, o); err != nil && err != io.EOF {
						b.Fatal(err)
					}
				}
				readT += time.Since(t0)
				dropCache(b, fx.path)
				t1 := time.Now()
				if _, flt, err := fx.m.PageIn(ctx, fx.alice, ref); err != nil || flt == nil {
					b.Fatalf("PageIn: fault %v, %v", flt, err)
				}
				pageT += time.Since(t1)
				fx.pageOut(b, ref, TierCold)
			}
			n := float64(b.N) * float64(tc.ln) / 1e6
			b.ReportMetric(n/readT.Seconds(), "read-MB/s")
			b.ReportMetric(n/pageT.Seconds(), "pagein-MB/s")
			b.ReportMetric(readT.Seconds()/pageT.Seconds(), "ratio")
		})
	}
}

// BenchmarkFrozenThaw thaws a 64 MiB archive: random bytes (weights barely
// compress) and a repetitive pattern.
func BenchmarkFrozenThaw(b *testing.B) {
	const size = 64 * mib
	for _, tc := range []struct {
		name string
		data func() []byte
	}{
		{"random", func() []byte {
			d := make([]byte, size)
			r := rand.NewChaCha8([32]byte{1})
			r.Read(d)
			return d
		}},
		{"pattern", func() []byte { return pattern(size, 5) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			src := coldFile(b, "src", tc.data())
			fz, err := NewFrozenStore(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			d, err := fz.Freeze(ctx, src)
			if err != nil {
				b.Fatal(err)
			}
			os.Remove(src)
			st, _ := os.Stat(fz.Path(d))
			dst := filepath.Join(b.TempDir(), "thawed")
			b.ReportAllocs()
			b.SetBytes(size)
			for b.Loop() {
				if err := fz.Thaw(ctx, d, dst); err != nil {
					b.Fatal(err)
				}
				os.Remove(dst)
			}
			b.ReportMetric(float64(st.Size())/float64(size), "archive/raw")
		})
	}
}

// BenchmarkPageInFault is the paging path in steady state: a cycle over
// more pages than the tiers hold, so that every page-in faults and
// demotes. "from=cold" reads each page back from the file (Warm's victim
// goes to Bench, Bench's to Cold); "from=bench" finds it in Bench and
// swaps it with Warm's victim. Pages are one OS page each, so the time is
// the genome's own cost, not the disk's. allocs/op is what a fault costs
// the Go heap, counted over the whole process:
//
//   - api=PageIn: as configured by default, with the pprof profiles on
//     (one stack capture each per fault) and a new PageFault returned;
//   - api=PageInTo: the decoding loop's path (engine.ExpertPager), with
//     Config.NoProfiles; no allocation on the paging goroutine;
//   - bus=on adds a publisher, whose payloads the event goroutine boxes
//     off the paging path (one per fault and one per eviction).
func BenchmarkPageInFault(b *testing.B) {
	pg := int64(pageSize)
	for _, from := range []struct {
		name        string
		warm, bench int64 // pages
		tier        TierRole
	}{{"from=cold", 2, 2, TierCold}, {"from=bench", 2, 6, TierBench}} {
		for _, api := range []struct {
			name       string
			into, bus  bool
			noProfiles bool
		}{
			{"api=PageIn/bus=on", false, true, false},
			{"api=PageInTo/bus=off", true, false, true},
			{"api=PageInTo/bus=on", true, true, true},
		} {
			b.Run(from.name+"/"+api.name, func(b *testing.B) {
				const n = 8
				cfg := Config{Tiers: []TierStore{NewWarmStore(from.warm * pg), NewBenchStore(from.bench * pg)}, NoProfiles: api.noProfiles}
				fx := newFixtureConfig(b, n*pg, cfg, ArtifactSpec{})
				fx.m.SetPublisher(nil)
				if api.bus {
					fx.m.SetPublisher(discard{})
				}
				ctx := context.Background()
				refs := settledCycle(b, fx, n, pg)
				var f PageFault
				i := 0
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					var err error
					ok := true
					if api.into {
						_, ok, err = fx.m.PageInTo(ctx, fx.alice, refs[i], &f)
					} else {
						var fp *PageFault
						_, fp, err = fx.m.PageIn(ctx, fx.alice, refs[i])
						if ok = fp != nil; ok {
							f = *fp
						}
					}
					if err != nil || !ok || f.From != from.tier {
						b.Fatalf("page %d: got fault %v %+v, %v; want one from %s", i, ok, f, err, from.tier)
					}
					i = (i + 1) % n
				}
			})
		}
	}
}

// settledCycle returns the refs of the first n pages of fx's artifact, of
// size bytes each, paged in three times round, so that every page has
// been placed and the cycle has settled.
func settledCycle(b *testing.B, fx *fixture, n int, size int64) []PageRef {
	refs := make([]PageRef, n)
	for i := range refs {
		refs[i] = RangePage(fx.art, int64(i)*size, size)
	}
	for range 3 {
		for _, r := range refs {
			fx.pageIn(b, r)
		}
	}
	return refs
}

// BenchmarkPageInFaultManyPages is BenchmarkPageInFault's decoding path
// (PageInTo, no profiles, no bus) from Cold, in an artifact where many
// other pages have been placed once and sit in Cold, as a model's
// thousands of expert pages do: the cost of a fault must not grow with
// the pages the artifact has.
func BenchmarkPageInFaultManyPages(b *testing.B) {
	pg := int64(pageSize)
	for _, idle := range []int{0, 1024, 8192} {
		b.Run(fmt.Sprintf("idle=%d", idle), func(b *testing.B) {
			const n = 8
			cfg := Config{Tiers: []TierStore{NewWarmStore(2 * pg), NewBenchStore(2 * pg)}, NoProfiles: true}
			fx := newFixtureConfig(b, int64(n+idle)*pg, cfg, ArtifactSpec{})
			fx.m.SetPublisher(nil)
			for i := range idle {
				fx.pageIn(b, RangePage(fx.art, int64(n+i)*pg, pg))
			}
			faultLoop(b, fx, settledCycle(b, fx, n, pg), TierCold)
		})
	}
}

// BenchmarkPageInCached is a page-in of an expert-sized page (4 MiB) whose
// bytes are already in the page cache: a Bench page promoted to Warm, as
// the budget's tiers do for every Bench hit and as every page-in of a
// prefetched expert does. The page need only be locked; reading it again
// would be a 4 MiB copy on the decoding goroutine.
func BenchmarkPageInCached(b *testing.B) {
	const n, size = 4, 4 * mib
	cfg := Config{Tiers: []TierStore{NewWarmStore(size), NewBenchStore(n * size)}, NoProfiles: true}
	fx := newFixtureConfig(b, n*size, cfg, ArtifactSpec{})
	fx.m.SetPublisher(nil)
	b.SetBytes(size)
	faultLoop(b, fx, settledCycle(b, fx, n, size), TierBench)
}

// faultLoop pages refs in round and round through PageInTo, each a fault
// from tier from, as the timed loop of a benchmark.
func faultLoop(b *testing.B, fx *fixture, refs []PageRef, from TierRole) {
	ctx := context.Background()
	var f PageFault
	i := 0
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		_, ok, err := fx.m.PageInTo(ctx, fx.alice, refs[i], &f)
		if err != nil || !ok || f.From != from {
			b.Fatalf("page %d: got fault %v %+v, %v; want one from %s", i, ok, f, err, from)
		}
		i = (i + 1) % len(refs)
	}
}

// discard is a Publisher that drops what it is sent.
type discard struct{}

func (discard) Publish(string, any) error { return nil }
