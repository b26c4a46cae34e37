package genome

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"
)

func TestFrozenRoundTripAndCorruption(t *testing.T) {
	ctx := context.Background()
	data := pattern(3*mib+123, 9)
	src := coldFile(t, "adapter.bin", data)
	fz, err := NewFrozenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	d, err := fz.Freeze(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	d2, err := fz.Freeze(ctx, src)
	if err != nil || d2 != d {
		t.Fatalf("second freeze: got %s, %v, want the same digest %s", d2, err, d)
	}
	dst := filepath.Join(t.TempDir(), "thawed")
	if err := fz.Thaw(ctx, d, dst); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("thawed %d bytes, differ from the %d frozen", len(got), len(data))
	}

	archive, err := os.ReadFile(fz.Path(d))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		corrupt func([]byte) []byte
	}{
		{"flipped byte in stream", func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }},
		{"flipped byte in digest", func(b []byte) []byte { b[20] ^= 1; return b }},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"wrong length", func(b []byte) []byte { b[8]++; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-100] }},
		{"header only", func(b []byte) []byte { return b[:frozenHeaderSize] }},
		{"short header", func(b []byte) []byte { return b[:10] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.WriteFile(fz.Path(d), tt.corrupt(bytes.Clone(archive)), 0o644); err != nil {
				t.Fatal(err)
			}
			dst := filepath.Join(t.TempDir(), "thawed")
			err := fz.Thaw(ctx, d, dst)
			var ce *CorruptArchiveError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorruptArchive) {
				t.Fatalf("got %v, want *CorruptArchiveError", err)
			}
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				t.Fatalf("destination after a failed thaw: got %v, want not exist", err)
			}
			left, _ := filepath.Glob(filepath.Join(filepath.Dir(dst), ".thaw-*"))
			if len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}

// TestManagerFreezeAndThaw pages a whole artifact out to Frozen and back in
// through the manager: the fault comes from Frozen, the bytes are the same,
// and the thawed file starts cold.
func TestManagerFreezeAndThaw(t *testing.T) {
	fz, err := NewFrozenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fx := newFixture(t, 2*mib+5, []TierStore{NewWarmStore(0), fz}, ArtifactSpec{Kind: ArtifactAdapter})
	whole := WholePage(fx.art)
	h, _ := fx.pageIn(t, whole)
	fx.pageOut(t, whole, TierFrozen)
	if fx.m.Stats().LockedBytes != 0 {
		t.Fatalf("after freeze: locked %d, want 0", fx.m.Stats().LockedBytes)
	}
	ws := fx.m.WorkingSet()
	if len(ws.Pages) != 1 || ws.Pages[0].Tier != TierFrozen {
		t.Fatalf("working set after freeze: got %+v, want the whole page frozen", ws.Pages)
	}
	fx.checkBytes(t, h) // an old handle still reads the right bytes

	h2, f := fx.pageIn(t, RangePage(fx.art, mib, mib))
	if f == nil || f.From != TierFrozen || f.To != TierWarm {
		t.Fatalf("page-in after freeze: got fault %+v, want frozen -> warm", f)
	}
	fx.checkBytes(t, h2)
	file, err := fx.m.File(fx.art)
	if err != nil {
		t.Fatal(err)
	}
	if file.Path == fx.path || filepath.Dir(file.Path) != filepath.Join(fz.Dir(), "thawed") {
		t.Fatalf("thawed path: got %s, want a file in the thaw dir", file.Path)
	}
	if got := cachedBytes(t, file.Path, 0, mib); got != 0 {
		t.Fatalf("thawed file outside the paged-in range: %d bytes resident, want 0 (cold)", got)
	}
	wantErr(t, fx.m.PageOut(context.Background(), fx.admin, RangePage(fx.art, 0, mib), TierFrozen), ErrBadPage)
	// Freezing again removes the thawed file, which the manager owns.
	fx.pageOut(t, whole, TierFrozen)
	if _, err := os.Stat(file.Path); !os.IsNotExist(err) {
		t.Fatalf("thawed file after a second freeze: got %v, want removed", err)
	}
	if _, err := os.Stat(fx.path); err != nil {
		t.Fatalf("the caller's original file: %v, want it kept", err)
	}
}

// chunkBudget is a context that reports itself cancelled after Err has
// been asked n times. copyCtx asks once per 1 MiB it copies, so it bounds
// how much a thaw may write without relying on a clock.
type chunkBudget struct {
	context.Context
	n int
}

func (c *chunkBudget) Err() error {
	if c.n <= 0 {
		return context.Canceled
	}
	c.n--
	return nil
}

// TestThawStopsAtHeaderLength thaws an archive whose header says 1 MiB but
// whose stream decodes to 256 MiB of zeros. The length check must fail
// after about 1 MiB has been written, not after the whole stream. copyCtx
// checks the context once per read of at most 1 MiB (the decoder hands out
// 128 KiB blocks, so about 9 reads reach 1 MiB); a thaw that copied the
// whole stream first would need at least 256 and exhaust the budget of 32,
// failing with the context's error instead.
func TestThawStopsAtHeaderLength(t *testing.T) {
	fz, err := NewFrozenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, mib)
	for range 256 {
		if _, err := enc.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	d := Digest{1, 2, 3}
	hdr := make([]byte, frozenHeaderSize)
	copy(hdr, frozenMagic)
	binary.LittleEndian.PutUint64(hdr[8:16], mib)
	copy(hdr[16:], d[:])
	if err := os.WriteFile(fz.Path(d), append(hdr, buf.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "thawed")
	err = fz.Thaw(&chunkBudget{Context: context.Background(), n: 32}, d, dst)
	var ce *CorruptArchiveError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want *CorruptArchiveError within 32 reads", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("destination after a failed thaw: got %v, want not exist", err)
	}
}
