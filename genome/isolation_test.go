package genome

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/strata-llm/strata/bus"
)

// The layout of isolationFixture's 4 MiB file: weights in [0, 1 MiB) and
// [3 MiB, 4 MiB); 2 layers x 4 experts of 256 KiB each in [1 MiB, 3 MiB).
const expertLen = 256 << 10

func expertAt(layer, expert int) Extent {
	return Extent{Off: mib + int64(layer*4+expert)*expertLen, Len: expertLen}
}

// isoFixture adds personas with narrower tables to the usual fixture.
type isoFixture struct {
	*fixture
	weightsOnly, expertsOnly, pageOnly, evictor PersonaID
}

func newIsoFixture(t *testing.T) *isoFixture {
	t.Helper()
	fz, err := NewFrozenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	spec := ArtifactSpec{Layers: 2, ExpertCount: 4, Experts: func(l, e int) ([]Extent, error) {
		if l >= 2 || e >= 4 {
			return nil, ErrBadPage
		}
		return []Extent{expertAt(l, e)}, nil
	}}
	fx := &isoFixture{fixture: newFixture(t, 4*mib, []TierStore{NewWarmStore(0), fz}, spec)}
	for _, p := range []struct {
		id    *PersonaID
		table AccessTable
	}{
		{&fx.weightsOnly, AccessTable{RegionWeights: OpRead | OpPage}},
		{&fx.expertsOnly, AccessTable{RegionExperts: OpRead | OpPage}},
		{&fx.pageOnly, AccessTable{RegionWeights: OpPage, RegionExperts: OpPage}},
		{&fx.evictor, AccessTable{RegionWeights: OpEvict, RegionExperts: OpEvict}},
	} {
		*p.id = NewPersonaID()
		if err := fx.m.RegisterPersona(Persona{ID: *p.id, Access: &p.table}); err != nil {
			t.Fatal(err)
		}
	}
	return fx
}

// denialsSince returns the denials the recorder got after the first n.
// They are published before the denied call returns: no Flush.
func (fx *fixture) denialsSince(n int) []AccessDenied {
	var out []AccessDenied
	for _, p := range fx.rec.byKey(KeyAccessDenied)[n:] {
		out = append(out, p.(AccessDenied))
	}
	return out
}

// TestIsolationByBytes owns one expert for alice and checks every way of
// reaching its bytes, and the regions of pages by their bytes rather than
// their kind, for each operation that takes an actor.
func TestIsolationByBytes(t *testing.T) {
	fx := newIsoFixture(t)
	owned := ExpertPage(fx.art, 0, 1)
	if err := fx.m.RegisterPageOwner(fx.admin, owned, fx.alice); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pageIn := func(who PersonaID, ref PageRef) error { _, _, err := fx.m.PageIn(ctx, who, ref); return err }
	audit := func(who PersonaID, ref PageRef) error { return fx.m.AuditAccess(who, ref) }
	pin := func(who PersonaID, ref PageRef) error {
		if err := fx.m.Pin(who, ref); err != nil {
			return err
		}
		return fx.m.Unpin(who, ref)
	}
	evict := func(who PersonaID, ref PageRef) error { return fx.m.PageOut(ctx, who, ref, TierCold) }
	freeze := func(who PersonaID, ref PageRef) error { return fx.m.PageOut(ctx, who, ref, TierFrozen) }

	o := expertAt(0, 1)
	none := PersonaID{}
	tests := []struct {
		name   string
		call   func(PersonaID, PageRef) error
		who    PersonaID
		ref    PageRef
		denied bool
		region GenomeRegion // of the denial
		op     Op
		owner  PersonaID
	}{
		{"bob pages the owned expert", pageIn, fx.bob, owned, true, RegionExperts, OpRead | OpPage, fx.alice},
		{"bob pages the whole file", pageIn, fx.bob, WholePage(fx.art), true, RegionWeights, OpRead | OpPage, fx.alice},
		{"bob pages a range over its tail", pageIn, fx.bob, RangePage(fx.art, o.End()-100, 4096), true, RegionExperts, OpRead | OpPage, fx.alice},
		{"bob audits a range holding it", audit, fx.bob, RangePage(fx.art, mib, mib), true, RegionExperts, OpRead, fx.alice},
		{"bob pins a range inside it", pin, fx.bob, RangePage(fx.art, o.Off+300, 10), true, RegionExperts, OpPage, fx.alice},
		{"bob pages the next expert", pageIn, fx.bob, ExpertPage(fx.art, 0, 2), false, 0, 0, none},
		{"bob pages weights", pageIn, fx.bob, RangePage(fx.art, 0, mib), false, 0, 0, none},
		{"alice pages the whole file", pageIn, fx.alice, WholePage(fx.art), false, 0, 0, none},
		{"alice may not evict", evict, fx.alice, owned, true, RegionExperts, OpEvict, none},
		{"engine evicts weights", evict, fx.admin, RangePage(fx.art, 0, mib), false, 0, 0, none},
		{"engine evicts the whole file over alice's bytes", evict, fx.admin, WholePage(fx.art), true, RegionWeights, OpEvict, fx.alice},
		{"weights-only reads expert bytes through a range", pageIn, fx.weightsOnly, RangePage(fx.art, 2*mib, 4096), true, RegionExperts, OpRead | OpPage, none},
		{"weights-only reads the whole file", audit, fx.weightsOnly, WholePage(fx.art), true, RegionExperts, OpRead, none},
		{"weights-only reads weights", pageIn, fx.weightsOnly, RangePage(fx.art, 3*mib, mib), false, 0, 0, none},
		{"experts-only reads expert bytes through a range", pageIn, fx.expertsOnly, RangePage(fx.art, 2*mib, expertLen), false, 0, 0, none},
		{"experts-only reads a range across weights", pageIn, fx.expertsOnly, RangePage(fx.art, mib-4096, 8192), true, RegionWeights, OpRead | OpPage, none},
		{"paging without read", pageIn, fx.pageOnly, RangePage(fx.art, 0, 4096), true, RegionWeights, OpRead | OpPage, none},
		{"unknown persona pins", pin, NewPersonaID(), RangePage(fx.art, 0, 4096), true, RegionWeights, OpPage, none},
		{"freezing needs archive write", freeze, fx.evictor, WholePage(fx.art), true, RegionArchive, OpWrite, none},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(fx.rec.byKey(KeyAccessDenied))
			before := fx.m.Stats().Denials
			err := tt.call(tt.who, tt.ref)
			pub := fx.denialsSince(n)
			if !tt.denied {
				if err != nil || len(pub) != 0 {
					t.Fatalf("got %v and %d denials published, want allowed", err, len(pub))
				}
				return
			}
			var ad *AccessDeniedError
			if !errors.As(err, &ad) {
				t.Fatalf("got %v, want *AccessDeniedError", err)
			}
			d := ad.Denial
			if d.Actor != tt.who || d.Page != tt.ref || d.Region != tt.region || d.Op != tt.op || d.Owner != tt.owner {
				t.Fatalf("denial: got actor %s page %s region %s op %s owner %s, want %s %s %s %s %s",
					d.Actor, d.Page, d.Region, d.Op, d.Owner, tt.who, tt.ref, tt.region, tt.op, tt.owner)
			}
			if len(pub) != 1 || pub[0] != d {
				t.Fatalf("published: got %+v, want exactly the returned denial %+v", pub, d)
			}
			if got := fx.m.Stats().Denials - before; got != 1 {
				t.Fatalf("Stats.Denials grew by %d, want 1", got)
			}
		})
	}
}

// TestRegisterPageOwnerRules checks who may claim bytes, and that a claim
// made after a page is resident reaches the resident hit.
func TestRegisterPageOwnerRules(t *testing.T) {
	fx := newIsoFixture(t)
	ctx := context.Background()
	shared := RangePage(fx.art, expertAt(1, 0).Off, 4096) // inside expert (1, 0)
	if _, _, err := fx.m.PageIn(ctx, fx.bob, shared); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		actor  PersonaID
		ref    PageRef
		owner  PersonaID
		want   error
		reason string // of the denial
	}{
		{"alice claims for herself", fx.alice, ExpertPage(fx.art, 1, 0), fx.alice, ErrAccessDenied, "access table allows read|page on experts"},
		{"engine gives expert (1,0) to alice", fx.admin, ExpertPage(fx.art, 1, 0), fx.alice, nil, ""},
		{"engine gives it to alice again", fx.admin, ExpertPage(fx.art, 1, 0), fx.alice, nil, ""},
		{"engine gives an overlapping range to bob", fx.admin, RangePage(fx.art, expertAt(1, 0).End()-10, 20), fx.bob, ErrAccessDenied, "page owned by another persona"},
		{"engine gives the whole file to bob", fx.admin, WholePage(fx.art), fx.bob, ErrAccessDenied, "page owned by another persona"},
		{"unknown owner", fx.admin, ExpertPage(fx.art, 1, 1), NewPersonaID(), ErrUnknownPersona, ""},
		{"unknown actor", NewPersonaID(), ExpertPage(fx.art, 1, 1), fx.bob, ErrAccessDenied, "unknown persona"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(fx.rec.byKey(KeyAccessDenied))
			err := fx.m.RegisterPageOwner(tt.actor, tt.ref, tt.owner)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
			pub := fx.denialsSince(n)
			if tt.reason == "" {
				if len(pub) != 0 {
					t.Fatalf("got %d denials published, want none", len(pub))
				}
				return
			}
			if len(pub) != 1 || pub[0].Reason != tt.reason || pub[0].Op != OpWrite {
				t.Fatalf("published: got %+v, want one write denial: %s", pub, tt.reason)
			}
		})
	}
	// bob's page was resident before alice got its bytes: the hit path
	// must refuse him now.
	_, _, err := fx.m.PageIn(ctx, fx.bob, shared)
	wantErr(t, err, ErrAccessDenied)
	if _, _, err := fx.m.PageIn(ctx, fx.alice, shared); err != nil {
		t.Fatalf("alice pages her bytes: got %v, want nil", err)
	}
	for _, p := range fx.m.WorkingSet().Pages {
		if p.Ref == shared && p.Owner != fx.alice {
			t.Fatalf("working set: %s owner got %s, want alice", p.Ref, p.Owner)
		}
	}
}

// TestUnpinOnlyOwnPins checks that one persona cannot undo another's pin.
func TestUnpinOnlyOwnPins(t *testing.T) {
	fx := newFixture(t, 2*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	ref := RangePage(fx.art, 0, mib)
	fx.pageIn(t, ref)
	if err := fx.m.Pin(fx.alice, ref); err != nil {
		t.Fatal(err)
	}
	wantErr(t, fx.m.Unpin(fx.bob, ref), ErrNotPinned)
	wantErr(t, fx.m.PageOut(context.Background(), fx.admin, ref, TierCold), ErrPinned)
	wantErr(t, fx.m.Unpin(NewPersonaID(), ref), ErrAccessDenied)
	if err := fx.m.Unpin(fx.alice, ref); err != nil {
		t.Fatalf("alice unpins her pin: got %v, want nil", err)
	}
	fx.pageOut(t, ref, TierCold)
}

// failingPublisher refuses every event.
type failingPublisher struct{}

var errPublish = errors.New("bus refused")

func (failingPublisher) Publish(string, any) error { return errPublish }

// TestDenialsAreNeverDropped fills the event queue behind a stuck
// subscriber and checks that every denial still reaches the bus before
// the denied call returns, while faults overflow and are counted. A
// denial that cannot be published is reported in the error and counted.
func TestDenialsAreNeverDropped(t *testing.T) {
	p := coldFile(t, "f", pattern(mib, 3))
	m, err := NewLocal(Config{Tiers: []TierStore{NewWarmStore(0)}, EventQueue: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	id, err := m.RegisterArtifact(ArtifactSpec{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	who, owner, engine := NewPersonaID(), NewPersonaID(), NewPersonaID()
	full := FullAccess
	for _, p := range []Persona{{ID: who}, {ID: owner}, {ID: engine, Access: &full}} {
		if err := m.RegisterPersona(p); err != nil {
			t.Fatal(err)
		}
	}
	b := bus.New()
	m.AttachBus(b)
	release, entered := make(chan struct{}), make(chan struct{}, 1)
	var once sync.Once
	unstick := func() { once.Do(func() { close(release) }) }
	defer unstick() // before m.Close, which waits for the stuck subscriber
	faults, err := SubscribeKey(b, KeyPageFault, bus.ModuleFuncs{ModuleName: "stuck", Artifact: func(bus.Artifact) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer faults.Unsubscribe()
	var mu sync.Mutex
	denials := 0
	audit, err := SubscribeKey(b, KeyAccessDenied, bus.ModuleFuncs{ModuleName: "audit", Artifact: func(bus.Artifact) {
		mu.Lock()
		denials++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Unsubscribe()

	ctx := context.Background()
	ps := int64(pageSize)
	for i := range int64(4) {
		if _, _, err := m.PageIn(ctx, who, RangePage(id, i*ps, ps)); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-entered // the drain goroutine is stuck; the queue fills
		}
	}
	if m.Stats().DroppedEvents == 0 {
		t.Fatal("no fault dropped: the queue is not full, the test proves nothing")
	}
	if err := m.RegisterPageOwner(engine, WholePage(id), owner); err != nil {
		t.Fatal(err)
	}
	const n = 50
	for i := range n {
		_, _, err := m.PageIn(ctx, who, RangePage(id, int64(i%8)*ps, ps))
		wantErr(t, err, ErrAccessDenied)
		mu.Lock()
		got := denials
		mu.Unlock()
		if got != i+1 {
			t.Fatalf("after denial %d: the audit subscriber got %d, want %d", i+1, got, i+1)
		}
	}
	unstick()
	if s := m.Stats(); s.Denials != n || s.UnpublishedDenials != 0 {
		t.Fatalf("got %d denials, %d unpublished; want %d, 0", s.Denials, s.UnpublishedDenials, n)
	}

	m.SetPublisher(failingPublisher{})
	_, _, err = m.PageIn(ctx, who, RangePage(id, 0, ps))
	var ad *AccessDeniedError
	if !errors.As(err, &ad) || !errors.Is(ad.PublishErr, errPublish) {
		t.Fatalf("denial the bus refused: got %v, want *AccessDeniedError carrying %v", err, errPublish)
	}
	m.SetPublisher(nil)
	wantErr(t, m.AuditAccess(who, WholePage(id)), ErrAccessDenied)
	if s := m.Stats(); s.UnpublishedDenials != 2 {
		t.Fatalf("UnpublishedDenials: got %d, want 2 (refused, no publisher)", s.UnpublishedDenials)
	}
}

// TestDenialRecorder checks that SetDenialRecorder's function gets every
// denial before the denied call returns, and that its failure comes back
// with the denial.
func TestDenialRecorder(t *testing.T) {
	fx := newFixture(t, mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	var got []AccessDenied
	errFull := errors.New("log full")
	fx.m.SetDenialRecorder(func(d AccessDenied) error {
		got = append(got, d)
		if len(got) == 2 {
			return errFull
		}
		return nil
	})
	ref := RangePage(fx.art, 0, 4096)
	tests := []struct {
		name    string
		call    func() error
		op      Op
		wantRec error
	}{
		{"evict without the right", func() error { return fx.m.PageOut(context.Background(), fx.bob, ref, TierCold) }, OpEvict, nil},
		{"write without the right", func() error { return fx.m.RegisterPageOwner(fx.bob, ref, fx.bob) }, OpWrite, errFull},
		{"unknown persona", func() error { return fx.m.CheckPermission(NewPersonaID(), RegionWeights, OpRead) }, OpRead, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			var ad *AccessDeniedError
			if !errors.As(err, &ad) || !errors.Is(ad.RecordErr, tt.wantRec) || (tt.wantRec == nil && ad.RecordErr != nil) {
				t.Fatalf("got %v, want a denial with record error %v", err, tt.wantRec)
			}
			if len(got) != i+1 || got[i] != ad.Denial || got[i].Op != tt.op {
				t.Fatalf("recorded %+v, want denial %d to be the returned one, op %s", got, i+1, tt.op)
			}
		})
	}
	if s := fx.m.Stats(); s.UnrecordedDenials != 1 || s.Denials != 3 {
		t.Fatalf("got %d denials, %d unrecorded; want 3, 1", s.Denials, s.UnrecordedDenials)
	}
	fx.m.SetDenialRecorder(nil)
	wantErr(t, fx.m.CheckPermission(fx.bob, RegionWeights, OpEvict), ErrAccessDenied)
	if len(got) != 3 {
		t.Fatalf("after SetDenialRecorder(nil): %d recorded, want 3", len(got))
	}
}
