package routing

import (
	"bufio"
	"bytes"
	"io"
	"testing"
)

// benchTrace is shaped like issue 9's bench-moe (24 MoE layers, 64
// experts, 4 used) on a mildly skewed, locally reusing router.
func benchTrace(b *testing.B) *Trace {
	return synth(b, 1000, 24, 64, 4, 1.1, 0.35, 1)
}

// BenchmarkSimulate replays 1,000 tokens through each policy with a
// quarter of the experts resident, reporting the hit rate and the cost
// per access.
func BenchmarkSimulate(b *testing.B) {
	w := NewWorkload(benchTrace(b))
	c := Capacity{Slots: w.Pages() / 4}
	for _, p := range Policies {
		b.Run(p.String(), func(b *testing.B) {
			b.ReportAllocs()
			var r Result
			for b.Loop() {
				var err error
				if r, err = w.Run(p, c); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(r.HitRate(), "hit-rate")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(w.Accesses()), "ns/access")
		})
	}
}

// BenchmarkWriterAppend is the recorder's cost per token.
func BenchmarkWriterAppend(b *testing.B) {
	tr := benchTrace(b)
	w, err := NewWriter(bufio.NewWriter(io.Discard), tr.Header)
	if err != nil {
		b.Fatal(err)
	}
	row := make([]int32, tr.RowLen())
	for i := range row {
		row[i] = int32(tr.ids[i])
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Append(row); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRead(b *testing.B) {
	data := encode(b, benchTrace(b))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Read(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStats(b *testing.B) {
	tr := benchTrace(b)
	b.ReportAllocs()
	for b.Loop() {
		Stats(tr, 0)
	}
}
