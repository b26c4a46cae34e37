package genome

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Digest is the SHA-256 of an artifact's uncompressed bytes: the name of
// its archive in a FrozenStore (content addressing) and the checksum every
// thaw is verified against.
type Digest [32]byte

// String returns the digest in lower-case hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// Archive layout: a 48-byte header, then one zstd stream of the raw bytes.
//
//	[0:8]   magic "STRFRZ01"
//	[8:16]  raw length, little-endian
//	[16:48] SHA-256 of the raw bytes
//
// The zstd frame carries its own XXH64 checksum; the SHA-256 is checked as
// well so that a valid frame of the wrong content is caught too.
const (
	frozenMagic      = "STRFRZ01"
	frozenHeaderSize = 48
	frozenExt        = ".zst"
)

// FrozenStore is the Frozen tier: whole artifacts compressed with zstd into
// a directory, one file per content digest. Thawing writes a temporary file,
// verifies length and SHA-256, and only then renames it into place, so a
// corrupt archive never yields bytes at the destination. It is safe for
// concurrent use.
type FrozenStore struct {
	meter
	dir string

	mu       sync.Mutex // guards byOwner
	byOwner  map[ArtifactID]Digest
	encLevel zstd.EncoderLevel
}

// NewFrozenStore returns a Frozen tier archiving into dir, which is created
// if needed.
func NewFrozenStore(dir string) (*FrozenStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("genome: frozen store: %w", err)
	}
	return &FrozenStore{
		meter:    meter{role: TierFrozen},
		dir:      dir,
		byOwner:  make(map[ArtifactID]Digest),
		encLevel: zstd.SpeedFastest,
	}, nil
}

// Dir returns the archive directory.
func (s *FrozenStore) Dir() string { return s.dir }

// Path returns the archive path for d.
func (s *FrozenStore) Path(d Digest) string { return filepath.Join(s.dir, d.String()+frozenExt) }

// Digest returns the digest recorded for artifact a by Write.
func (s *FrozenStore) Digest(a ArtifactID) (Digest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.byOwner[a]
	return d, ok
}

// Freeze compresses the file at src into the archive and returns its
// digest. Freezing the same content twice stores it once.
func (s *FrozenStore) Freeze(ctx context.Context, src string) (Digest, error) {
	var d Digest
	in, err := os.Open(src)
	if err != nil {
		return d, fmt.Errorf("genome: freeze: %w", err)
	}
	defer in.Close()
	tmp, err := os.CreateTemp(s.dir, ".freeze-*")
	if err != nil {
		return d, fmt.Errorf("genome: freeze: %w", err)
	}
	defer func() {
		if tmp != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(make([]byte, frozenHeaderSize)); err != nil {
		return d, fmt.Errorf("genome: freeze %s: %w", src, err)
	}
	enc, err := zstd.NewWriter(tmp, zstd.WithEncoderLevel(s.encLevel), zstd.WithEncoderCRC(true))
	if err != nil {
		return d, fmt.Errorf("genome: freeze: %w", err)
	}
	h := sha256.New()
	n, err := copyCtx(ctx, io.MultiWriter(enc, h), in)
	if cerr := enc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return d, fmt.Errorf("genome: freeze %s: %w", src, err)
	}
	copy(d[:], h.Sum(nil))
	var hdr [frozenHeaderSize]byte
	copy(hdr[:8], frozenMagic)
	binary.LittleEndian.PutUint64(hdr[8:16], uint64(n))
	copy(hdr[16:], d[:])
	if _, err := tmp.WriteAt(hdr[:], 0); err != nil {
		return d, fmt.Errorf("genome: freeze %s: %w", src, err)
	}
	if err := tmp.Sync(); err != nil {
		return d, fmt.Errorf("genome: freeze %s: %w", src, err)
	}
	if err := tmp.Close(); err != nil {
		return d, fmt.Errorf("genome: freeze %s: %w", src, err)
	}
	name := tmp.Name()
	tmp = nil
	if err := os.Rename(name, s.Path(d)); err != nil {
		os.Remove(name)
		return d, fmt.Errorf("genome: freeze %s: %w", src, err)
	}
	return d, nil
}

// Thaw decompresses archive d to dst. It verifies the header, the zstd
// checksum, the length and the SHA-256 before dst appears; on any mismatch
// it returns a *CorruptArchiveError and leaves dst untouched. The thawed
// file is synced and dropped from the page cache: it is a Cold file.
func (s *FrozenStore) Thaw(ctx context.Context, d Digest, dst string) error {
	path := s.Path(d)
	in, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("genome: thaw: %w", err)
	}
	defer in.Close()
	var hdr [frozenHeaderSize]byte
	if _, err := io.ReadFull(in, hdr[:]); err != nil {
		return &CorruptArchiveError{Path: path, Reason: "short header", Err: err}
	}
	if string(hdr[:8]) != frozenMagic {
		return &CorruptArchiveError{Path: path, Reason: fmt.Sprintf("bad magic %q", hdr[:8])}
	}
	if !bytesEqual(hdr[16:], d[:]) {
		return &CorruptArchiveError{Path: path, Reason: "header digest does not match archive name"}
	}
	want := int64(binary.LittleEndian.Uint64(hdr[8:16]))
	if want < 0 {
		return &CorruptArchiveError{Path: path, Reason: fmt.Sprintf("header length %d", uint64(want))}
	}
	dec, err := zstd.NewReader(in, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return &CorruptArchiveError{Path: path, Reason: "zstd header", Err: err}
	}
	defer dec.Close()

	tmp, err := os.CreateTemp(filepath.Dir(dst), ".thaw-*")
	if err != nil {
		return fmt.Errorf("genome: thaw: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	h := sha256.New()
	// The stream may decode to far more than the header says (a corrupt
	// or hostile archive compresses gigabytes of zeros into kilobytes):
	// read one byte past the header's length and stop, so at most that
	// much is ever written to the disk before the length check fails.
	n, err := copyCtx(ctx, io.MultiWriter(tmp, h), io.LimitReader(dec, min(want, maxInt64-1)+1))
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("genome: thaw %s: %w", path, err)
		}
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Path == name {
			return fmt.Errorf("genome: thaw %s: %w", path, err)
		}
		return &CorruptArchiveError{Path: path, Reason: "zstd stream", Err: err}
	}
	switch {
	case n > want:
		return &CorruptArchiveError{Path: path, Reason: fmt.Sprintf("stream longer than the %d bytes the header says", want)}
	case n < want:
		return &CorruptArchiveError{Path: path, Reason: fmt.Sprintf("length %d, header says %d", n, want)}
	}
	var got Digest
	copy(got[:], sumOf(h))
	if got != d {
		return &CorruptArchiveError{Path: path, Reason: fmt.Sprintf("sha256 %s, want %s", got, d)}
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("genome: thaw %s: %w", dst, err)
	}
	// Written bytes sit in the page cache; a thawed file is Cold, so drop them.
	if err := sysFadviseDontNeed(tmp, 0, n); err != nil && !errors.Is(err, ErrUnsupported) {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("genome: thaw %s: %w", dst, err)
	}
	if err := os.Rename(name, dst); err != nil {
		return fmt.Errorf("genome: thaw %s: %w", dst, err)
	}
	ok = true
	return nil
}

// Write freezes the artifact file of a Whole page and records its digest.
func (s *FrozenStore) Write(ctx context.Context, r *Region) error {
	if r.Ref.Kind != PageWhole {
		return fmt.Errorf("genome: frozen tier holds whole artifacts, not %s pages: %w", r.Ref.Kind, ErrBadPage)
	}
	d, err := s.Freeze(ctx, r.File.Path)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.byOwner[r.Ref.Artifact] = d
	s.mu.Unlock()
	s.used.Add(r.Bytes)
	return nil
}

// Read thaws the artifact of r to r.File.Path.
func (s *FrozenStore) Read(ctx context.Context, r *Region) error {
	d, ok := s.Digest(r.Ref.Artifact)
	if !ok {
		return fmt.Errorf("genome: thaw %s: not in frozen store: %w", r.Ref, ErrUnknownArtifact)
	}
	return s.Thaw(ctx, d, r.File.Path)
}

// Evict forgets the artifact; the archive file stays, since other
// artifacts with the same content may share it.
func (s *FrozenStore) Evict(ctx context.Context, r *Region) error {
	s.mu.Lock()
	_, ok := s.byOwner[r.Ref.Artifact]
	delete(s.byOwner, r.Ref.Artifact)
	s.mu.Unlock()
	if ok {
		s.used.Add(-r.Bytes)
	}
	return nil
}

// copyCtx copies in 1 MiB chunks, checking ctx between chunks.
func copyCtx(ctx context.Context, dst io.Writer, src io.Reader) (int64, error) {
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := src.Read(buf)
		if k > 0 {
			w, werr := dst.Write(buf[:k])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, rerr
		}
	}
}

func sumOf(h hash.Hash) []byte { return h.Sum(nil) }

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }
