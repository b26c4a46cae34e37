package genome

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

const mib = 1 << 20

// pattern returns n deterministic bytes that differ from page to page.
func pattern(n int64, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i) ^ byte(i>>12) ^ seed
	}
	return b
}

// coldFile writes data to a file in a temp dir, syncs it and drops it from
// the page cache, so the test starts with nothing resident.
func coldFile(tb testing.TB, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(tb.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
	dropCache(tb, p)
	return p
}

func dropCache(tb testing.TB, p string) {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		tb.Fatal(err)
	}
	st, _ := f.Stat()
	if err := sysFadviseDontNeed(f, 0, st.Size()); err != nil {
		if errors.Is(err, ErrUnsupported) {
			tb.Skip("the genome does not page on this system:", err)
		}
		tb.Fatal(err)
	}
}

// cachedBytes measures with mincore, through a fresh mapping, how much of
// [off, off+n) of the file at p is in the page cache.
func cachedBytes(tb testing.TB, p string, off, n int64) int64 {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	b, err := mapFile(f, st.Size())
	if err != nil {
		tb.Fatal(err)
	}
	defer unmapFile(b)
	lo, hi := alignDown(off), min(alignUp(off+n), st.Size())
	r, err := Resident(b[lo:hi])
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func lockedNow(tb testing.TB) int64 {
	tb.Helper()
	n, err := LockedBytes()
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

// recorder is a Publisher that keeps what it is sent.
type recorder struct {
	mu  sync.Mutex
	evs []published
}

// published is one event a recorder was sent.
type published struct {
	key     string
	payload any
}

func (r *recorder) Publish(key string, payload any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, published{key: key, payload: payload})
	return nil
}

func (r *recorder) byKey(key string) []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []any
	for _, e := range r.evs {
		if e.key == key {
			out = append(out, e.payload)
		}
	}
	return out
}

// fixture is a manager with one registered file and two personas.
type fixture struct {
	m     *Local
	rec   *recorder
	path  string
	data  []byte
	art   ArtifactID
	alice PersonaID
	bob   PersonaID
	admin PersonaID
}

func newFixture(tb testing.TB, size int64, tiers []TierStore, spec ArtifactSpec) *fixture {
	tb.Helper()
	return newFixtureConfig(tb, size, Config{Tiers: tiers}, spec)
}

// newFixtureConfig is newFixture with the whole manager Config.
func newFixtureConfig(tb testing.TB, size int64, cfg Config, spec ArtifactSpec) *fixture {
	tb.Helper()
	fx := &fixture{data: pattern(size, 7), rec: &recorder{}}
	fx.path = coldFile(tb, "model.bin", fx.data)
	m, err := NewLocal(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	m.SetPublisher(fx.rec)
	fx.m = m
	spec.Path = fx.path
	if fx.art, err = m.RegisterArtifact(spec); err != nil {
		tb.Fatal(err)
	}
	fx.alice, fx.bob, fx.admin = NewPersonaID(), NewPersonaID(), NewPersonaID()
	full := FullAccess
	for _, p := range []Persona{{ID: fx.alice, Name: "alice"}, {ID: fx.bob, Name: "bob"}, {ID: fx.admin, Name: "engine", Access: &full}} {
		if err := m.RegisterPersona(p); err != nil {
			tb.Fatal(err)
		}
	}
	return fx
}

func (fx *fixture) pageIn(tb testing.TB, ref PageRef) (PageHandle, *PageFault) {
	tb.Helper()
	h, f, err := fx.m.PageIn(context.Background(), fx.alice, ref)
	if err != nil {
		tb.Fatalf("PageIn(%s): %v", ref, err)
	}
	return h, f
}

func (fx *fixture) pageOut(tb testing.TB, ref PageRef, to TierRole) {
	tb.Helper()
	if err := fx.m.PageOut(context.Background(), fx.admin, ref, to); err != nil {
		tb.Fatalf("PageOut(%s, %s): %v", ref, to, err)
	}
}

func (fx *fixture) flush(tb testing.TB) {
	tb.Helper()
	if err := fx.m.Flush(context.Background()); err != nil {
		tb.Fatal(err)
	}
}

// checkBytes verifies a handle's bytes against the file content.
func (fx *fixture) checkBytes(tb testing.TB, h PageHandle) {
	tb.Helper()
	ex := h.Extents()
	bs := h.Bytes()
	if len(ex) != len(bs) {
		tb.Fatalf("got %d byte slices for %d extents", len(bs), len(ex))
	}
	for i, e := range ex {
		if !bytes.Equal(bs[i], fx.data[e.Off:e.End()]) {
			tb.Fatalf("%s extent %d [%d+%d]: bytes differ from the file", h.Ref, i, e.Off, e.Len)
		}
	}
}

func wantErr(tb testing.TB, err, target error) {
	tb.Helper()
	if !errors.Is(err, target) {
		tb.Fatalf("got error %v, want %v", err, target)
	}
}

func openTB(tb testing.TB, p string) *os.File {
	tb.Helper()
	f, err := os.Open(p)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	return f
}
