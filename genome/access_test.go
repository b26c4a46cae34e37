package genome

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/strata-llm/strata/bus"
)

func TestCrossPersonaAccessDeniedAndPublished(t *testing.T) {
	fx := newFixture(t, 2*mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{Kind: ArtifactAdapter})
	b := bus.New()
	fx.m.AttachBus(b)
	var mu sync.Mutex
	var got []AccessDenied
	sub, err := SubscribeKey(b, KeyAccessDenied, bus.ModuleFuncs{ModuleName: "t", Artifact: func(a bus.Artifact) {
		mu.Lock()
		got = append(got, a.Payload.(AccessDenied))
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()

	whole := WholePage(fx.art)
	if err := fx.m.RegisterPageOwner(fx.admin, whole, fx.alice); err != nil {
		t.Fatal(err)
	}
	ref := RangePage(fx.art, 0, mib)
	fx.pageIn(t, ref) // alice owns it
	ctx := context.Background()
	_, _, err = fx.m.PageIn(ctx, fx.bob, ref) // a resident page: the fast path must refuse too
	var ad *AccessDeniedError
	if !errors.As(err, &ad) || !errors.Is(err, ErrAccessDenied) {
		t.Fatalf("bob PageIn alice's page: got %v, want *AccessDeniedError", err)
	}
	if ad.Denial.Actor != fx.bob || ad.Denial.Owner != fx.alice || ad.Denial.Region != RegionAdapters {
		t.Fatalf("denial: got %+v, want actor bob, owner alice, region adapters", ad.Denial)
	}
	wantErr(t, fx.m.AuditAccess(fx.bob, ref), ErrAccessDenied)
	if err := fx.m.AuditAccess(fx.alice, ref); err != nil {
		t.Fatalf("alice AuditAccess: got %v, want nil", err)
	}
	_, _, err = fx.m.PageIn(ctx, NewPersonaID(), WholePage(fx.art))
	wantErr(t, err, ErrAccessDenied)
	if err := fx.m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 3 {
		t.Fatalf("got %d access_denied artifacts on the bus, want 3: %+v", len(got), got)
	}
	if got[0].Op != OpRead|OpPage || got[1].Op != OpRead || got[2].Reason != "unknown persona" {
		t.Fatalf("denials: got %+v, want read|page, read, unknown persona", got)
	}
	if s := fx.m.Stats(); s.Denials != 3 {
		t.Fatalf("Stats.Denials: got %d, want 3", s.Denials)
	}
}

func TestCheckPermissionTable(t *testing.T) {
	fx := newFixture(t, mib, []TierStore{NewWarmStore(0)}, ArtifactSpec{})
	readOnly := AccessTable{RegionWeights: OpRead}
	ro := NewPersonaID()
	if err := fx.m.RegisterPersona(Persona{ID: ro, Access: &readOnly}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		actor  PersonaID
		region GenomeRegion
		op     Op
		ok     bool
	}{
		{"default reads weights", fx.alice, RegionWeights, OpRead, true},
		{"default pages experts", fx.alice, RegionExperts, OpPage, true},
		{"default may not evict", fx.alice, RegionWeights, OpEvict, false},
		{"default may not write adapters", fx.alice, RegionAdapters, OpWrite, false},
		{"default reads archive", fx.alice, RegionArchive, OpRead, true},
		{"default may not page archive", fx.alice, RegionArchive, OpPage, false},
		{"full evicts", fx.admin, RegionExperts, OpEvict, true},
		{"full writes archive", fx.admin, RegionArchive, OpWrite | OpRead, true},
		{"read-only may not page", ro, RegionWeights, OpPage, false},
		{"read+page needs both", ro, RegionWeights, OpRead | OpPage, false},
		{"unknown persona", NewPersonaID(), RegionWeights, OpRead, false},
		{"bad region", fx.admin, numRegions, OpRead, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fx.m.CheckPermission(tt.actor, tt.region, tt.op)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckPermission(%s, %s): got %v, want allowed=%v", tt.region, tt.op, err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrAccessDenied) {
				t.Fatalf("got %v, want ErrAccessDenied", err)
			}
		})
	}
	// A read-only persona cannot page, even a page without owner.
	_, _, err := fx.m.PageIn(context.Background(), ro, WholePage(fx.art))
	wantErr(t, err, ErrAccessDenied)
	wantErr(t, fx.m.RegisterPersona(Persona{ID: ro}), ErrDuplicate)
	wantErr(t, fx.m.RegisterPageOwner(fx.admin, WholePage(fx.art), NewPersonaID()), ErrUnknownPersona)
}

func TestBusCarriesFaultsAndEvictions(t *testing.T) {
	fx := newFixture(t, 2*mib, []TierStore{NewWarmStore(mib)}, ArtifactSpec{})
	b := bus.New()
	fx.m.AttachBus(b)
	var mu sync.Mutex
	keys := map[string]int{}
	sub, err := SubscribeWorkingSet(b, bus.ModuleFuncs{ModuleName: "t", Artifact: func(a bus.Artifact) {
		mu.Lock()
		keys[a.Key]++
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	fx.pageIn(t, RangePage(fx.art, 0, mib))
	fx.pageIn(t, RangePage(fx.art, mib, mib)) // evicts the first
	if err := fx.m.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if keys[KeyPageFault] != 2 || keys[KeyEviction] != 1 || len(keys) != 2 {
		t.Fatalf("got %v, want 2 page faults and 1 eviction", keys)
	}
	if _, err := SubscribeKey(b, "genome/working_set.other", bus.ModuleFuncs{ModuleName: "x"}); err == nil {
		t.Fatal("SubscribeKey with an unknown key: got nil error")
	}
	if KeyPageFault != bus.KeyPageFault || KeyEviction != bus.KeyEviction || KeyAccessDenied != bus.KeyAccessDenied {
		t.Fatal("genome keys differ from bus keys")
	}
}

// TestPublishDoesNotBlock holds a subscriber inside its handler and checks
// that page faults still complete, with the overflow dropped and counted.
func TestPublishDoesNotBlock(t *testing.T) {
	data := pattern(mib, 3)
	p := coldFile(t, "f", data)
	m, err := NewLocal(Config{Tiers: []TierStore{NewWarmStore(0)}, EventQueue: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	id, _ := m.RegisterArtifact(ArtifactSpec{Path: p})
	who := NewPersonaID()
	m.RegisterPersona(Persona{ID: who})
	b := bus.New()
	m.AttachBus(b)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	sub, err := SubscribeKey(b, KeyPageFault, bus.ModuleFuncs{ModuleName: "slow", Artifact: func(bus.Artifact) {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	ctx := context.Background()
	const n = 8
	for i := range int64(n) {
		if _, _, err := m.PageIn(ctx, who, RangePage(id, i*int64(pageSize), int64(pageSize))); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			<-entered // the drain goroutine is now stuck in the handler
		}
	}
	// One event is in the handler, two are queued, the rest were dropped.
	if got := m.Stats().DroppedEvents; got != n-3 {
		t.Fatalf("DroppedEvents: got %d, want %d", got, n-3)
	}
	close(release)
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFlushAndCloseFromSubscriber calls Flush and then Close from inside a
// subscriber's handler, which runs on the goroutine that publishes the
// manager's events. Neither may wait for that goroutine.
func TestFlushAndCloseFromSubscriber(t *testing.T) {
	p := coldFile(t, "f", pattern(mib, 3))
	m, err := NewLocal(Config{Tiers: []TierStore{NewWarmStore(0)}})
	if err != nil {
		t.Fatal(err)
	}
	// No deferred Close: the handler closes m, and if it hung a second
	// Close would hang the test too.
	id, err := m.RegisterArtifact(ArtifactSpec{Path: p})
	if err != nil {
		t.Fatal(err)
	}
	who := NewPersonaID()
	if err := m.RegisterPersona(Persona{ID: who}); err != nil {
		t.Fatal(err)
	}
	b := bus.New()
	m.AttachBus(b)
	flushed, closed := make(chan error, 1), make(chan error, 1)
	sub, err := SubscribeKey(b, KeyPageFault, bus.ModuleFuncs{ModuleName: "t", Artifact: func(bus.Artifact) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		flushed <- m.Flush(ctx)
		closed <- m.Close()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if _, _, err := m.PageIn(context.Background(), who, RangePage(id, 0, mib)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		ch   chan error
		want error
	}{{"Flush", flushed, ErrFlushInSubscriber}, {"Close", closed, nil}} {
		select {
		case err := <-c.ch:
			if !errors.Is(err, c.want) {
				t.Fatalf("%s from a subscriber: got %v, want %v", c.name, err, c.want)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s from a subscriber: still waiting after 30s, want it to return", c.name)
		}
	}
	if _, _, err := m.PageIn(context.Background(), who, RangePage(id, 0, mib)); !errors.Is(err, ErrClosed) {
		t.Fatalf("PageIn after Close from a subscriber: got %v, want ErrClosed", err)
	}
}
