package audit

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// A crash while a checkpoint is written leaves a torn last line in the
// checkpoint file. ReadCheckpoints ignores it, and Open cuts it off before
// appending, so the next checkpoint does not land on the fragment and the
// log opens again and again.
func TestTornCheckpointLine(t *testing.T) {
	tests := []struct {
		name string
		torn string
	}{
		{"cut mid-line", `{"seq":3,"chainHa`},
		{"one byte", `{`},
		{"zeros after a crash", string(make([]byte, 512))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, priv := testKey(t)
			path := filepath.Join(t.TempDir(), "a.log")
			opts := &Options{Sync: SyncNone, Signer: priv, CheckpointEvery: 1}
			appendN(t, path, opts, 2)
			f, err := os.OpenFile(CheckpointPath(path), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteString(tt.torn); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if cps, err := ReadCheckpoints(CheckpointPath(path)); err != nil || len(cps) != 2 {
				t.Fatalf("ReadCheckpoints: got %d checkpoints, %v, want 2, nil", len(cps), err)
			}

			// Reopen twice: each Open must accept what the one before wrote.
			appendN(t, path, opts, 2)
			appendN(t, path, opts, 1)
			cps, err := ReadCheckpoints(CheckpointPath(path))
			if err != nil {
				t.Fatalf("ReadCheckpoints after reopening: %v", err)
			}
			var seqs []uint64
			for _, c := range cps {
				seqs = append(seqs, c.Seq)
			}
			if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) {
				t.Errorf("checkpoints at %v, want [1 2 3 4 5]", seqs)
			}
			if sum, err := VerifyWith(path, VerifyOptions{PublicKey: pub, Checkpoints: cps}); err != nil || sum.Checkpoints != 5 {
				t.Errorf("VerifyWith: got %d checkpoints checked, %v, want 5, nil", sum.Checkpoints, err)
			}
		})
	}
}

// appendN opens the log at path, appends n entries and closes it.
func appendN(tb testing.TB, path string, opts *Options, n int) {
	tb.Helper()
	l, err := Open(path, opts)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	for range n {
		if _, err := l.Append(KindRefusal, nil); err != nil {
			tb.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		tb.Fatalf("Close: %v", err)
	}
}

// A checkpoint that cannot be written leaves the checkpoint file in an
// unknown state: the log is broken, every later Append says so, and the
// log opens again once closed.
func TestCheckpointWriteFailureBreaksLog(t *testing.T) {
	tests := []struct {
		name  string
		fault faultyFile
	}{
		{"write fails at once", faultyFile{failWrite: true}},
		{"partial write", faultyFile{failWrite: true, writePartial: 20}},
		{"fsync fails", faultyFile{failSync: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pub, priv := testKey(t)
			path := filepath.Join(t.TempDir(), "a.log")
			opts := &Options{Sync: SyncNone, Signer: priv, CheckpointEvery: 2}
			l, err := Open(path, opts)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(KindRefusal, nil); err != nil {
				t.Fatal(err)
			}
			ff := tt.fault
			ff.logFile = l.cpf
			l.cpf = &ff

			e, err := l.Append(KindRefusal, nil)
			var we *WriteError
			if !errors.As(err, &we) || we.Op != "checkpoint" || !we.Broken || !errors.Is(err, ErrBroken) || !errors.Is(err, errInjected) {
				t.Fatalf("Append due a checkpoint: got %v, want a broken *WriteError of op checkpoint wrapping the failure", err)
			}
			if e.Seq != 2 {
				t.Errorf("got entry seq %d with the error, want 2 (the entry is written)", e.Seq)
			}
			ff.failWrite, ff.failSync = false, false
			if _, err := l.Append(KindRefusal, nil); !errors.Is(err, ErrBroken) {
				t.Errorf("Append on a broken log: got %v, want ErrBroken", err)
			}
			if _, err := l.WriteCheckpoint(); !errors.Is(err, ErrBroken) {
				t.Errorf("WriteCheckpoint on a broken log: got %v, want ErrBroken", err)
			}
			if seq, _ := l.Head(); seq != 2 {
				t.Errorf("got seq %d, want 2", seq)
			}
			l.Close()

			appendN(t, path, opts, 1)
			cps, err := ReadCheckpoints(CheckpointPath(path))
			if err != nil {
				t.Fatalf("ReadCheckpoints: %v", err)
			}
			if sum, err := VerifyWith(path, VerifyOptions{PublicKey: pub, Checkpoints: cps}); err != nil || sum.LastSeq != 3 {
				t.Errorf("VerifyWith: got seq %d, %v, want 3, nil", sum.LastSeq, err)
			}
			if len(cps) == 0 || cps[len(cps)-1].Seq != 3 {
				t.Errorf("got checkpoints %+v, want the last at seq 3", cps)
			}
		})
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

// TestCheckpointFileStrict: a checkpoint line with anything after its
// object, or keys in another case, is not a checkpoint the log wrote; and
// an old signed checkpoint appended again is not taken for the latest.
func TestCheckpointFileStrict(t *testing.T) {
	_, priv := testKey(t)
	path := filepath.Join(t.TempDir(), "a.log")
	opts := &Options{Sync: SyncNone, Signer: priv, CheckpointEvery: 1}
	appendN(t, path, opts, 3)
	cpPath := CheckpointPath(path)
	good, err := os.ReadFile(cpPath)
	if err != nil {
		t.Fatal(err)
	}
	first := strings.TrimSuffix(splitLines(good)[0], "\n")

	for name, extra := range map[string]string{
		"trailing object": first + ` {"x":1}` + "\n",
		"other case":      strings.Replace(first, `"seq"`, `"SEQ"`, 1) + "\n",
	} {
		if err := os.WriteFile(cpPath, append(slices.Clone(good), extra...), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadCheckpoints(cpPath); err == nil {
			t.Errorf("%s: ReadCheckpoints accepted %q", name, extra)
		}
	}

	// The first checkpoint (seq 1) appended after the last (seq 3).
	if err := os.WriteFile(cpPath, append(slices.Clone(good), first+"\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, &Options{Sync: SyncNone, Signer: priv})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if cp, ok := l.LastCheckpoint(); !ok || cp.Seq != 3 {
		t.Errorf("LastCheckpoint after a stale one was appended: seq %d, want 3", cp.Seq)
	}
}
