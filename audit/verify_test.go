package audit

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"
)

func TestVerifyTypedErrors(t *testing.T) {
	tests := []struct {
		name  string
		build func() []byte
		check func(t *testing.T, err error)
	}{
		{
			name:  "payload changed",
			build: func() []byte { es := chain(5, steady); es[2].Payload = []byte(`{"i":9}`); return encode(es) },
			check: func(t *testing.T, err error) {
				var ce *ChainError
				if !errors.As(err, &ce) || ce.Line != 3 || ce.Seq != 3 {
					t.Errorf("got %v, want *ChainError at line 3, seq 3", err)
				}
			},
		},
		{
			name:  "middle entry removed",
			build: func() []byte { es := chain(5, steady); return encode(append(es[:2:2], es[3:]...)) },
			check: func(t *testing.T, err error) {
				var ge *SeqGapError
				if !errors.As(err, &ge) || ge.Line != 3 || ge.Expected != 3 || ge.Got != 4 {
					t.Errorf("got %v, want *SeqGapError{Line 3, Expected 3, Got 4}", err)
				}
			},
		},
		{
			name:  "first entries removed",
			build: func() []byte { return encode(chain(5, steady)[2:]) },
			check: func(t *testing.T, err error) {
				var ge *SeqGapError
				if !errors.As(err, &ge) || ge.Line != 1 || ge.Expected != 1 || ge.Got != 3 {
					t.Errorf("got %v, want *SeqGapError{Line 1, Expected 1, Got 3}", err)
				}
			},
		},
		{
			name: "entries swapped",
			build: func() []byte {
				es := chain(4, steady)
				es[1], es[2] = es[2], es[1]
				es[1].Seq, es[2].Seq = 2, 3
				es[1].ChainHash = ChainHash(2, es[1].TimestampMs, es[1].Kind, es[1].Payload, es[1].PrevChainHash)
				return encode(es)
			},
			check: func(t *testing.T, err error) {
				var ce *ChainError
				if !errors.As(err, &ce) || ce.Line != 2 || ce.Reason != "prevChainHash does not match the previous entry's chainHash" {
					t.Errorf("got %v, want a prevChainHash *ChainError at line 2", err)
				}
			},
		},
		{
			name: "timestamp backward",
			build: func() []byte {
				return encode(chain(4, func(i int) int64 { return []int64{10, 20, 19, 30}[i] }))
			},
			check: func(t *testing.T, err error) {
				var te *TimestampError
				if !errors.As(err, &te) || te.Line != 3 || te.Prev != 20 || te.Got != 19 {
					t.Errorf("got %v, want *TimestampError{Line 3, Prev 20, Got 19}", err)
				}
			},
		},
		{
			name: "garbage line",
			build: func() []byte {
				b := encode(chain(2, steady))
				return append(b, "not json\n"...)
			},
			check: func(t *testing.T, err error) {
				var me *MalformedLineError
				if !errors.As(err, &me) || me.Line != 3 {
					t.Errorf("got %v, want *MalformedLineError at line 3", err)
				}
			},
		},
		{
			name:  "empty line",
			build: func() []byte { return append([]byte("\n"), encode(chain(1, steady))...) },
			check: func(t *testing.T, err error) {
				var me *MalformedLineError
				if !errors.As(err, &me) || me.Line != 1 || me.Reason != "empty line" {
					t.Errorf("got %v, want *MalformedLineError{Line 1, empty line}", err)
				}
			},
		},
		{
			name: "torn tail",
			build: func() []byte {
				b := encode(chain(3, steady))
				return b[:len(b)-40]
			},
			check: func(t *testing.T, err error) {
				var te *TornTailError
				full := encode(chain(3, steady))
				off := int64(len(encode(chain(3, steady)[:2])))
				if !errors.As(err, &te) || te.Line != 3 || te.Offset != off || te.Length != len(full)-40-int(off) {
					t.Errorf("got %v, want *TornTailError at line 3, byte %d", err, off)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Verify(writeFile(t, tt.build()))
			if err == nil {
				t.Fatal("got nil, want an error")
			}
			tt.check(t, err)
		})
	}
}

func TestVerifyValid(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		entries int
	}{
		{"empty file", nil, 0},
		{"equal timestamps", encode(chain(4, func(int) int64 { return 5 })), 4},
		{"negative timestamps", encode(chain(3, func(i int) int64 { return int64(i) - 10 })), 3},
		{"many", encode(chain(300, steady)), 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, err := Verify(writeFile(t, tt.data))
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			if sum.Entries != tt.entries || sum.Bytes != int64(len(tt.data)) {
				t.Errorf("got %d entries, %d bytes, want %d, %d", sum.Entries, sum.Bytes, tt.entries, len(tt.data))
			}
		})
	}
	sum, err := Verify(filepath.Join(t.TempDir(), "missing.log"))
	if err != nil || sum.Entries != 0 || sum.LastHash != GenesisHash {
		t.Errorf("missing file: got %+v, %v, want an empty log", sum, err)
	}
}

// A forger who rewrites and rehashes the whole chain is caught only by a
// checkpoint; without one the forged chain is self-consistent.
func TestVerifyForgedChainNeedsCheckpoint(t *testing.T) {
	es := chain(4, steady)
	pub, priv := testKey(t)
	cp := SignCheckpoint(priv, 3, es[2].ChainHash)
	es[1].Payload = []byte(`{"forged":true}`)
	rehash(es)
	if _, err := VerifyReader(bytes.NewReader(encode(es)), VerifyOptions{}); err != nil {
		t.Fatalf("forged chain without checkpoint: got %v, want nil (self-consistent)", err)
	}
	_, err := VerifyReader(bytes.NewReader(encode(es)), VerifyOptions{PublicKey: pub, Checkpoints: []Checkpoint{cp}})
	var ce *CheckpointError
	if !errors.As(err, &ce) || ce.Seq != 3 {
		t.Errorf("got %v, want *CheckpointError at seq 3", err)
	}
}

func TestLongLines(t *testing.T) {
	es := chain(2, steady)
	es[1].Payload = append(append([]byte(`"`), bytes.Repeat([]byte("x"), 3<<20)...), '"')
	rehash(es)
	sum, err := VerifyReader(bytes.NewReader(encode(es)), VerifyOptions{})
	if err != nil || sum.Entries != 2 {
		t.Errorf("3 MiB line: got %d entries, %v, want 2, nil", sum.Entries, err)
	}
}
