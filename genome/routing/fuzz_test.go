package routing

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

// FuzzRead checks that Read never panics, that every error is a
// *FormatError at an offset inside the input, that only ErrTruncated
// comes with a (partial) trace, and that a trace it returns is
// consistent (every id below Experts, whole rows) and survives a write
// and a second read unchanged. The seed corpus in testdata/fuzz/FuzzRead
// holds small valid traces of one- and two-byte ids and truncated ones.
func FuzzRead(f *testing.F) {
	f.Add(encode(f, synth(f, 3, 2, 8, 2, 0, 0, 1)))
	f.Add(encode(f, synth(f, 2, 1, 300, 2, 0, 0, 2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Read(bytes.NewReader(data))
		if err != nil {
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Fatalf("got %T (%v), want a *FormatError", err, err)
			}
			if fe.Offset < 0 || fe.Offset > int64(len(data)) {
				t.Fatalf("error at offset %d of a %d-byte input: %v", fe.Offset, len(data), err)
			}
			if tr == nil {
				return
			}
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("got a trace with error %v; only ErrTruncated comes with one", err)
			}
		}
		if err := tr.Validate(); err != nil {
			t.Fatalf("accepted header fails Validate: %v", err)
		}
		if len(tr.ids) != tr.Tokens()*tr.RowLen() {
			t.Fatalf("%d ids for %d tokens of %d", len(tr.ids), tr.Tokens(), tr.RowLen())
		}
		for _, e := range tr.ids {
			if int(e) >= tr.Experts {
				t.Fatalf("accepted expert %d of %d", e, tr.Experts)
			}
		}
		var b bytes.Buffer
		if _, err := tr.WriteTo(&b); err != nil {
			t.Fatalf("rewrite: %v", err)
		}
		again, err := Read(&b)
		if err != nil {
			t.Fatalf("reading the rewrite: %v", err)
		}
		if !slices.Equal(again.ids, tr.ids) || again.Arch != tr.Arch || !slices.Equal(again.Layers, tr.Layers) {
			t.Fatal("the rewrite reads back different")
		}
	})
}
