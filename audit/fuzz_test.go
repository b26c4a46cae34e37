package audit

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseLine checks that the line parser never panics and accepts only
// canonical lines: whatever it accepts re-encodes to the same bytes.
func FuzzParseLine(f *testing.F) {
	for _, e := range chain(3, steady) {
		f.Add(bytes.TrimSuffix(e.MarshalLine(), []byte("\n")))
	}
	f.Add([]byte(`{"seq":01,"timestampMs":-0,"kind":"x","payload":{},"chainHash":"","prevChainHash":""}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var e Entry
		if parseLine(line, &e) != "" {
			return
		}
		if got := appendLine(nil, &e); !bytes.Equal(got, line) {
			t.Fatalf("accepted a non-canonical line:\n%q\nre-encodes as\n%q", line, got)
		}
	})
}

// FuzzVerify checks that the reader never panics on any file and that its
// answers are consistent with the input.
func FuzzVerify(f *testing.F) {
	good := encode(chain(3, steady))
	f.Add(good)
	f.Add(good[:len(good)-7])
	f.Add(append(good, '\n'))
	f.Add([]byte("\n\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		sum, err := VerifyReader(bytes.NewReader(data), VerifyOptions{})
		if sum.Bytes > int64(len(data)) || bytes.Count(data[:sum.Bytes], []byte("\n")) != sum.Entries {
			t.Fatalf("summary %+v inconsistent with %d bytes of input", sum, len(data))
		}
		if err == nil {
			if sum.Bytes != int64(len(data)) {
				t.Fatalf("verified %d of %d bytes without error", sum.Bytes, len(data))
			}
			return
		}
		var torn *TornTailError
		if errors.As(err, &torn) && (torn.Offset != sum.Bytes || torn.Offset+int64(torn.Length) != int64(len(data))) {
			t.Fatalf("torn tail %+v does not cover the end of %d bytes", torn, len(data))
		}
	})
}
