package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func testKey(tb testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	tb.Helper()
	priv := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	return priv.Public().(ed25519.PublicKey), priv
}

func TestCheckpointsDetectTruncation(t *testing.T) {
	pub, priv := testKey(t)
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, &Options{Sync: SyncNone, Signer: priv, CheckpointEvery: 4})
	for i := range 10 {
		if _, err := l.Append(KindAccessDenied, map[string]int{"i": i}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	cps, err := ReadCheckpoints(CheckpointPath(path))
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, c := range cps {
		seqs = append(seqs, c.Seq)
	}
	if len(seqs) != 3 || seqs[0] != 4 || seqs[1] != 8 || seqs[2] != 10 {
		t.Fatalf("checkpoints at %v, want [4 8 10] (every 4 and on close)", seqs)
	}
	opts := VerifyOptions{PublicKey: pub, Checkpoints: cps}
	if sum, err := VerifyWith(path, opts); err != nil || sum.Checkpoints != 3 {
		t.Fatalf("intact: got %+v, %v, want 3 checkpoints checked, nil", sum, err)
	}

	// Cut the log after entry 9: the chain alone is still valid.
	data, _ := os.ReadFile(path)
	lines := splitLines(data)
	cut := writeFile(t, []byte(joinLines(lines[:9])))
	if _, err := Verify(cut); err != nil {
		t.Fatalf("truncated, no checkpoints: got %v, want nil", err)
	}
	_, err = VerifyWith(cut, opts)
	var te *TruncatedError
	if !errors.As(err, &te) || te.CheckpointSeq != 10 || te.LastSeq != 9 {
		t.Errorf("truncated: got %v, want *TruncatedError{CheckpointSeq 10, LastSeq 9}", err)
	}

	// Open refuses a log cut behind its own checkpoints.
	if err := os.WriteFile(path, []byte(joinLines(lines[:7])), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, &Options{Signer: priv}); !errors.Is(err, ErrTruncated) {
		t.Errorf("Open of truncated log: got %v, want ErrTruncated", err)
	}
}

func TestCheckpointSignature(t *testing.T) {
	pub, priv := testKey(t)
	otherPub, _, _ := ed25519.GenerateKey(nil)
	es := chain(3, steady)
	cp := SignCheckpoint(priv, 2, es[1].ChainHash)
	tests := []struct {
		name string
		opts VerifyOptions
		want error
	}{
		{"good", VerifyOptions{PublicKey: pub, Checkpoints: []Checkpoint{cp}}, nil},
		{"wrong key", VerifyOptions{PublicKey: otherPub, Checkpoints: []Checkpoint{cp}}, ErrBadCheckpoint},
		{"seq changed", VerifyOptions{PublicKey: pub, Checkpoints: []Checkpoint{{Seq: 3, ChainHash: cp.ChainHash, Signature: cp.Signature}}}, ErrBadCheckpoint},
		{"hash changed", VerifyOptions{PublicKey: pub, Checkpoints: []Checkpoint{{Seq: 2, ChainHash: es[2].ChainHash, Signature: cp.Signature}}}, ErrBadCheckpoint},
		{"no key", VerifyOptions{Checkpoints: []Checkpoint{cp}}, ErrNoPublicKey},
		{"beyond end", VerifyOptions{PublicKey: pub, Checkpoints: []Checkpoint{SignCheckpoint(priv, 4, Hash{1})}}, ErrTruncated},
	}
	path := writeFile(t, encode(es))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := VerifyWith(path, tt.opts)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	pub, _ := testKey(t)
	keyFile := filepath.Join(t.TempDir(), "k.pub")
	if err := os.WriteFile(keyFile, []byte(hex.EncodeToString(pub)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{hex.EncodeToString(pub), base64.StdEncoding.EncodeToString(pub), keyFile} {
		got, err := ParsePublicKey(s)
		if err != nil || !got.Equal(pub) {
			t.Errorf("ParsePublicKey(%q): got %x, %v, want %x", s, got, err, pub)
		}
	}
	for _, s := range []string{"", "abcd", hex.EncodeToString(pub)[2:]} {
		if _, err := ParsePublicKey(s); !errors.Is(err, ErrBadPublicKey) {
			t.Errorf("ParsePublicKey(%q): got %v, want ErrBadPublicKey", s, err)
		}
	}
}

func TestReadCheckpointsIgnoresTornLine(t *testing.T) {
	_, priv := testKey(t)
	path := filepath.Join(t.TempDir(), "a.log")
	l := mustOpen(t, path, &Options{Sync: SyncNone, Signer: priv, CheckpointEvery: 1})
	for range 2 {
		if _, err := l.Append(KindRefusal, nil); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	f, _ := os.OpenFile(CheckpointPath(path), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":3,"chainHa`)
	f.Close()
	cps, err := ReadCheckpoints(CheckpointPath(path))
	if err != nil || len(cps) != 2 {
		t.Errorf("got %d checkpoints, %v, want 2, nil", len(cps), err)
	}
}

func splitLines(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == '\n' {
			out = append(out, string(b[start:i+1]))
			start = i + 1
		}
	}
	return out
}

func joinLines(ls []string) string {
	s := ""
	for _, l := range ls {
		s += l
	}
	return s
}
