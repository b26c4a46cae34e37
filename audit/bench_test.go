package audit

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"
)

var benchPayload = json.RawMessage(`{"module":"engine","artifact":"blk.17.ffn_up_exps","page":4711,"reason":"not in working set permissions"}`)

func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts Options
	}{
		{"sync=none", Options{Sync: SyncNone}},
		{"sync=batched-64", Options{Sync: SyncBatched, BatchEntries: 64, BatchInterval: 10 * time.Millisecond}},
		{"sync=every", Options{Sync: SyncEveryEntry}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			l, err := Open(filepath.Join(b.TempDir(), "a.log"), &bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			b.ReportAllocs()
			start := time.Now()
			for b.Loop() {
				if _, err := l.Append(KindAccessDenied, benchPayload); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
		})
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "a.log"), &Options{Sync: SyncBatched, BatchEntries: 64})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	b.ReportAllocs()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(KindAccessDenied, benchPayload); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

func BenchmarkVerify(b *testing.B) {
	es := chain(10_000, steady)
	for i := range es {
		es[i].Payload = benchPayload
	}
	rehash(es)
	data := encode(es)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		sum, err := VerifyReader(bytes.NewReader(data), VerifyOptions{})
		if err != nil || sum.Entries != len(es) {
			b.Fatal(sum, err)
		}
	}
	b.ReportMetric(float64(b.N*len(es))/time.Since(start).Seconds(), "entries/s")
}
