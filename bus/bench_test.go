package bus

import (
	"context"
	"fmt"
	"testing"
)

// sink is the cheapest possible module: it counts artifacts and events.
type sink struct{ n int }

func (s *sink) Name() string                                        { return "sink" }
func (s *sink) HandleEvent(Event) error                             { s.n++; return nil }
func (s *sink) OnArtifact(Artifact)                                 { s.n++ }
func (s *sink) HandleCommand(context.Context, Command) (any, error) { return nil, nil }

type benchPayload struct{ page int }

func BenchmarkPublishExact(b *testing.B) {
	bus := New()
	s := &sink{}
	if _, err := bus.SubscribeArtifact(Exact(KeyPageFault), s); err != nil {
		b.Fatal(err)
	}
	p := &benchPayload{page: 1}
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Publish(KeyPageFault, p); err != nil {
			b.Fatal(err)
		}
	}
	if s.n == 0 {
		b.Fatal("nothing delivered")
	}
}

func BenchmarkPublishExactParallel(b *testing.B) {
	bus := New()
	if _, err := bus.SubscribeArtifact(Exact(KeyPageFault), ModuleFuncs{ModuleName: "n"}); err != nil {
		b.Fatal(err)
	}
	p := &benchPayload{page: 1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := bus.Publish(KeyPageFault, p); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkPublishEventWildcard(b *testing.B) {
	bus := New()
	s := &sink{}
	for _, p := range []string{"engine:*:token", "engine:>", "other:>", "engine:s1:done"} {
		if _, err := bus.Subscribe(p, s); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := bus.Publish("engine:s1:token", nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.n)/float64(b.N), "deliveries/op")
}

// prefixBus has n Prefix selectors, one of which ("target/") matches the
// keys the benchmarks publish.
func prefixBus(b *testing.B, n int) (*MessageBus, *sink) {
	bus := New()
	s, other := &sink{}, &sink{}
	if _, err := bus.SubscribeArtifact(Prefix("target/"), s); err != nil {
		b.Fatal(err)
	}
	for i := 1; i < n; i++ {
		// Realistic shapes: module, module/surface and module/surface.event.
		var p string
		switch i % 3 {
		case 0:
			p = fmt.Sprintf("mod%d/", i)
		case 1:
			p = fmt.Sprintf("mod%d/surf%d.", i%1000, i)
		default:
			p = fmt.Sprintf("target/surf%d.ev", i)
		}
		if _, err := bus.SubscribeArtifact(Prefix(p), other); err != nil {
			b.Fatal(err)
		}
	}
	return bus, s
}

// BenchmarkPublishPrefix publishes one key repeatedly (a cache hit after the
// first publish) with 10 and 100 000 selectors registered.
func BenchmarkPublishPrefix(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("selectors=%d", n), func(b *testing.B) {
			bus, s := prefixBus(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if err := bus.Publish("target/llm.complete", nil); err != nil {
					b.Fatal(err)
				}
			}
			if s.n == 0 {
				b.Fatal("nothing delivered")
			}
		})
	}
}

// BenchmarkPublishPrefixUncached cycles through more keys than the cache
// holds, so nearly every publish walks the radix tree and the exact map.
func BenchmarkPublishPrefixUncached(b *testing.B) {
	keys := make([]string, 4*cacheMax)
	for i := range keys {
		keys[i] = fmt.Sprintf("target/llm.k%d", i)
	}
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("selectors=%d", n), func(b *testing.B) {
			bus, _ := prefixBus(b, n)
			misses := bus.Stats().CacheMisses
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if err := bus.Publish(keys[i%len(keys)], nil); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(bus.Stats().CacheMisses-misses)/float64(i), "misses/op")
		})
	}
}

// BenchmarkPrefixMatch measures the radix walk alone, without the cache.
func BenchmarkPrefixMatch(b *testing.B) {
	for _, n := range []int{10, 100_000} {
		b.Run(fmt.Sprintf("selectors=%d", n), func(b *testing.B) {
			bus, _ := prefixBus(b, n)
			res := make([]*Subscription, 0, 16)
			b.ReportAllocs()
			for b.Loop() {
				res = bus.prefixes.match("target/llm.complete", res[:0])
			}
			if len(res) == 0 {
				b.Fatal("no match")
			}
		})
	}
}
