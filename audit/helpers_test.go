package audit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// chain builds n valid entries with timestamps from ts(i).
func chain(n int, ts func(i int) int64) []Entry {
	var out []Entry
	prev := GenesisHash
	kinds := []Kind{KindAccessDenied, KindRefusal, KindGovernorOverride, KindFederationPolicyDrift}
	for i := range n {
		e := Entry{
			Seq:           uint64(i + 1),
			TimestampMs:   ts(i),
			Kind:          kinds[i%len(kinds)],
			Payload:       fmt.Appendf(nil, `{"i":%d,"note":"entry %d"}`, i, i),
			PrevChainHash: prev,
		}
		e.ChainHash = ChainHash(e.Seq, e.TimestampMs, e.Kind, e.Payload, e.PrevChainHash)
		prev = e.ChainHash
		out = append(out, e)
	}
	return out
}

func steady(i int) int64 { return 1_700_000_000_000 + int64(i) }

// rehash fixes the hashes of entries from i on, as a forger would.
func rehash(es []Entry) {
	prev := GenesisHash
	for i := range es {
		es[i].PrevChainHash = prev
		es[i].ChainHash = ChainHash(es[i].Seq, es[i].TimestampMs, es[i].Kind, es[i].Payload, prev)
		prev = es[i].ChainHash
	}
}

func encode(es []Entry) []byte {
	var b bytes.Buffer
	for i := range es {
		b.Write(es[i].MarshalLine())
	}
	return b.Bytes()
}

// writeFile writes data to a fresh file in a temp dir and returns its path.
func writeFile(tb testing.TB, data []byte) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "audit.log")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

// fixedClock returns a clock that starts at ms and advances by step per
// call.
func fixedClock(ms int64, step int64) func() time.Time {
	return func() time.Time {
		t := time.UnixMilli(ms)
		ms += step
		return t
	}
}

func mustOpen(tb testing.TB, path string, opts *Options) *Log {
	tb.Helper()
	l, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("Open(%s): %v", path, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}
