package genome

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// WorkingSetManager pages weights, experts and adapters between the tiers.
// Implementations are safe for concurrent use.
type WorkingSetManager interface {
	// Every call that reads or moves a page names the persona acting. A
	// page is guarded by the bytes it covers, whatever its kind: it lies in
	// every region its bytes lie in (a Range over expert tensors is in
	// RegionExperts), and any persona other than the owner of any of its
	// bytes is refused. A refusal is published on KeyAccessDenied before
	// the call returns it as an *AccessDeniedError.

	// PageIn makes the page resident in the manager's page-in tier (Warm
	// when configured) for persona, who needs OpRead|OpPage: the handle
	// gives its bytes. A page already there is a hit: no fault, no
	// syscall. Otherwise the configured tiers are walked top-down to find
	// the page, it is promoted, and the fault is returned.
	PageIn(ctx context.Context, persona PersonaID, ref PageRef) (PageHandle, *PageFault, error)
	// PageOut moves the page down to tier to; actor needs OpEvict, and
	// OpWrite on RegionArchive to freeze. A pinned page is skipped with
	// ErrPinned; an unconfigured tier is an *UnconfiguredTierError.
	PageOut(ctx context.Context, actor PersonaID, ref PageRef, to TierRole) error
	// Pin keeps the page where it is: eviction skips it until actor
	// Unpins it. actor needs OpPage.
	Pin(actor PersonaID, ref PageRef) error
	// Unpin undoes one of actor's own Pins.
	Unpin(actor PersonaID, ref PageRef) error
	// WorkingSet returns a snapshot of the placed pages and tier capacities.
	WorkingSet() WorkingSet
	RegisterPersona(p Persona) error
	// RegisterPageOwner makes owner the only persona that may touch the
	// bytes of ref, through any page that covers any of them. actor needs
	// OpWrite, and may not take bytes another persona owns.
	RegisterPageOwner(actor PersonaID, ref PageRef, owner PersonaID) error
	// AuditAccess checks that actor may read page ref.
	AuditAccess(actor PersonaID, ref PageRef) error
	// CheckPermission checks actor's access table for op on region.
	CheckPermission(actor PersonaID, region GenomeRegion, op Op) error
	Stats() Stats
	Close() error
}

// Publisher is where the manager sends events; *bus.MessageBus is one.
type Publisher interface {
	Publish(key string, payload any) error
}

// ArtifactKind says what an artifact holds, which decides the region its
// pages are guarded as.
type ArtifactKind uint8

// The artifact kinds.
const (
	ArtifactModel   ArtifactKind = iota // model weights (RegionWeights, experts in RegionExperts)
	ArtifactAdapter                     // a LoRA adapter (RegionAdapters)
)

// ExpertResolver returns the byte ranges of expert e of layer l in the
// artifact's file: its slices of the stacked ffn_gate/up/down_exps tensors.
type ExpertResolver func(layer, expert int) ([]Extent, error)

// ArtifactSpec describes a file to register.
type ArtifactSpec struct {
	ID   ArtifactID // zero: a new random ID
	Name string
	Path string
	Kind ArtifactKind
	// Experts resolves Expert pages; nil when the file has none. Layers and
	// ExpertCount, required with it, bound the enumeration in Pages and of
	// the bytes guarded as RegionExperts whatever page covers them.
	Experts     ExpertResolver
	Layers      int
	ExpertCount int
}

// maxLayers and maxExperts bound ArtifactSpec.Layers and ExpertCount, so
// that a corrupt header cannot make registration walk billions of
// layers; real models have a few hundred of each at most.
const (
	maxLayers  = 1 << 16
	maxExperts = 1 << 16
)

// Config configures a Local manager.
type Config struct {
	// Tiers are the configured stores, at most one per role. Cold is added
	// if missing: every registered file is on disk.
	Tiers []TierStore
	// PageInTier is where PageIn puts pages. Zero means Warm if configured,
	// else Bench, else Cold.
	PageInTier TierRole
	// ThawDir is where Frozen artifacts are thawed. Zero means
	// "<frozen dir>/thawed".
	ThawDir string
	// EventQueue bounds the events waiting for the bus; when it is full new
	// events are dropped and counted (Stats.DroppedEvents). Zero means 1024.
	EventQueue int
	// NoProfiles keeps this manager's Warm pages and faults out of the
	// pprof profiles (LockedProfileName, FaultProfileName). Each entry
	// costs pprof a stack capture, one allocation per fault and one per
	// page entering Warm: with the profiles off a fault in steady state
	// allocates nothing (PageInTo).
	NoProfiles bool
}

// Budget returns tiers that hold at most budget bytes of pages in memory:
// half Warm (locked), the rest Bench (cached), and Cold. A model whose
// pages exceed the budget still runs; pages beyond it live on disk.
//
// Limits are whole OS pages. Warm gets no more than RLIMIT_MEMLOCK lets
// this process lock now (Bench gets the rest), and is left out when that,
// or half the budget, is less than a page. A budget under one page is
// refused with ErrBudgetTooSmall rather than turned into a limit of 0,
// which a tier reads as no limit at all.
func Budget(budget int64) ([]TierStore, error) { return BudgetFor(budget, 0) }

// BudgetFor is Budget for pages used in a cycle of cycle bytes: Warm gets
// WarmShare(budget, cycle) instead of half, and Bench the rest, if any.
func BudgetFor(budget, cycle int64) ([]TierStore, error) { return BudgetCapped(budget, cycle, -1) }

// BudgetCapped is BudgetFor with at most maxLocked bytes in Warm (none
// when it is 0, no cap when it is negative), Bench taking the rest. Locked
// pages are the last the kernel reclaims: a budget that leaves too little
// memory for what the process reads besides its pages (an MoE model's
// dense weights) should lock only what fits, so that under pressure the
// kernel reclaims the budget's Bench pages rather than the weights every
// token reads.
func BudgetCapped(budget, cycle, maxLocked int64) ([]TierStore, error) {
	tiers, _, err := BudgetTiers(BudgetSpec{Budget: budget, Cycle: cycle, MaxLocked: maxLocked})
	return tiers, err
}

// BudgetSpec describes the tiers BudgetTiers makes.
type BudgetSpec struct {
	Budget    int64 // bytes of pages held in memory, Warm and Bench together
	Cycle     int64 // bytes of the cycle the pages are used in, or 0 (WarmShare)
	MaxLocked int64 // at most this many of Budget's bytes in Warm: 0 none, negative no cap
	// Pinned is room Warm gets beyond Budget for pages the caller pages
	// in and pins there before any other, and keeps: the weights every
	// step reads, which under memory pressure the kernel would otherwise
	// reclaim before the budget's own locked pages. RLIMIT_MEMLOCK is
	// spent on them first; when it cannot hold them all, they get none.
	Pinned int64
}

// BudgetTiers returns the tiers s describes, as BudgetCapped, with Warm
// grown by the pinned room it granted (s.Pinned in whole OS pages, or 0).
func BudgetTiers(s BudgetSpec) (tiers []TierStore, pinned int64, err error) {
	if s.Budget < int64(pageSize) {
		return nil, 0, fmt.Errorf("genome: budget of %d bytes, OS page %d: %w", s.Budget, pageSize, ErrBudgetTooSmall)
	}
	warm := alignDown(WarmShare(s.Budget, s.Cycle))
	if s.MaxLocked >= 0 {
		warm = min(warm, alignDown(s.MaxLocked))
	}
	pinned = alignUp(max(s.Pinned, 0))
	allow, limited, err := lockAllowance()
	if err != nil {
		return nil, 0, err
	}
	if limited {
		if allow < pinned {
			pinned = 0
		}
		warm = min(warm, alignDown(allow-pinned))
	}
	tiers = []TierStore{NewColdStore()}
	if bench := alignDown(s.Budget - warm); bench > 0 { // a limit of 0 would be none
		tiers = append([]TierStore{NewBenchStore(bench)}, tiers...)
	}
	if warm+pinned > 0 {
		tiers = append([]TierStore{NewWarmStore(warm + pinned)}, tiers...)
	}
	return tiers, pinned, nil
}

// WarmShare returns the share of budget that BudgetFor gives the Warm
// tier (before rounding down to whole OS pages) when pages are used in a
// cycle of cycle bytes, or half when cycle is 0. An MoE model's decode
// steps through every layer's routed experts in turn, so one token's
// experts (MoE layers × experts used × expert bytes) are such a cycle.
// For such pages Warm gets the whole budget: its PolicyCycle ranks every
// expert by its expected wait in the cycle, and a second tier below it
// only loses the pages its admission rule turns away. Replaying 384
// tokens of routing (cycles of 357 MiB) through genome.PolicySim, hit
// rates before (Warm on LRU, split by the cycle: half, or 1.1 cycles)
// and now:
//
//	budget    bench-moe          bench-moe-uniform
//	256 MiB   0.081 -> 0.216     0.032 -> 0.058
//	512 MiB   0.407 -> 0.413     0.098 -> 0.110
//	1 GiB     0.493 -> 0.513     0.184 -> 0.215
//	1.5 GiB   0.572 -> 0.591     0.285 -> 0.310
//
// On PolicyCycle, half and half instead gave 0.318 at 512 MiB and 0.508
// at 1 GiB on bench-moe.
func WarmShare(budget, cycle int64) int64 {
	if cycle <= 0 {
		return budget / 2
	}
	return budget
}

// artifact is a registered file. Fields are guarded by Local.opMu; file,
// frozen and owned are written with Local.mu held too, so they may also be
// read under Local.mu. id, spec, size and experts never change.
type artifact struct {
	id      ArtifactID
	spec    ArtifactSpec
	file    *ArtifactFile   // nil while frozen
	retired []*ArtifactFile // files replaced by a freeze; unmapped at Close so old handles stay readable
	thawed  bool            // file lives in the thaw dir and is the manager's to delete
	frozen  bool
	size    int64
	pages   map[*pageState]struct{}
	index   extentIndex // pages by the bytes they cover; opMu
	// experts are the bytes of every expert, sorted and merged: a page is
	// in RegionExperts when it covers any of them, whatever its kind.
	experts []Extent
	// owned are RegisterPageOwner's claims, by bytes.
	owned []ownership
	// cycle is what PolicyCycle learns about the artifact's experts.
	cycle *cycleState
}

// ownership is one RegisterPageOwner claim: the bytes raw (sorted,
// merged) of ref are owner's.
type ownership struct {
	ref   PageRef
	raw   []Extent
	owner PersonaID
}

// guard is what decides who may touch a page: the regions its bytes lie
// in and the distinct owners of any of its bytes.
type guard struct {
	regions regionSet
	owners  []PersonaID // replaced, never modified in place
}

// admits reports whether actor, whose table is t, may do op on a page with
// guard g. It is the resident hit's check and does not allocate.
func (g *guard) admits(t *AccessTable, actor PersonaID, op Op) bool {
	if _, ok := t.allowsAll(g.regions, op); !ok {
		return false
	}
	for _, o := range g.owners {
		if o != actor {
			return false
		}
	}
	return true
}

// pageState is the manager's record of one page. The extents, cost,
// regions and views are immutable; tier, pins, pinners and owners are
// written with both opMu and mu held, so holding either one is enough to
// read them. lastAccess and hits are access samples updated with atomics
// on the hit path; racing updates may be lost, as ristretto allows.
type pageState struct {
	ref   PageRef
	art   *artifact
	file  *ArtifactFile // the file views point into (art.file changes on freeze)
	raw   []Extent
	ext   []Extent
	cost  int64
	views [][]byte
	guard

	tier     TierRole
	pins     int32               // all personas' pins
	pinners  map[PersonaID]int32 // each persona's pins, so one cannot undo another's
	profiled bool                // in lockedProfile
	seen     uint64              // extentIndex's stamp of the search that last found it; opMu

	lastAccess atomic.Int64
	hits       atomic.Uint64
	cycleFields
}

// touch records an access sample: the clock's next tick, a hit, and for
// an expert its visit of the layers' cycle.
func (st *pageState) touch(clock *atomic.Int64) {
	st.lastAccess.Store(clock.Add(1))
	st.hits.Add(1)
	if st.cyc != nil {
		st.cyc.touch(st)
	}
}

// Local is the in-process WorkingSetManager.
//
// Lock order: opMu, then mu. opMu serializes every change of placement
// (faults, page-outs, pins, registration, freezing) and is held across the
// syscalls that move bytes; mu guards the maps and each page's tier, pins
// and owner, and is held only briefly, so a resident hit (mu.RLock) never
// waits for another page's disk read. Events are queued without blocking
// and published by a separate goroutine that holds no lock of the manager.
type Local struct {
	opMu sync.Mutex
	mu   sync.RWMutex

	stores   [numTiers]TierStore
	policies [numTiers]EvictionPolicy
	target   TierRole
	thawDir  string

	closed    bool
	artifacts map[ArtifactID]*artifact
	pages     map[PageRef]*pageState
	inTier    [numTiers]map[*pageState]struct{}
	personas  map[PersonaID]*AccessTable
	names     map[PersonaID]string // personas' names, for denials

	clock     atomic.Int64
	ctr       counters
	denialRec atomic.Pointer[func(AccessDenied) error] // SetDenialRecorder

	faultRing  [faultRingLen]*faultEntry // caller holds opMu
	faultNext  int
	noProfiles bool // Config.NoProfiles

	// Scratch of the paging path, reused from one fault to the next so
	// that a fault in steady state allocates nothing; all guarded by opMu.
	scratch regionScratch
	recs    []EvictionRecord
	rooms   [numTiers]roomScratch // by tier: makeRoom recurses only into lower tiers

	events
}

type counters struct {
	hits        atomic.Uint64
	faults      [numTiers]atomic.Uint64
	bytesIn     atomic.Uint64
	bytesOut    atomic.Uint64
	evictions   atomic.Uint64
	denials     atomic.Uint64
	dropped     atomic.Uint64
	publishErrs atomic.Uint64

	unpublishedDenials atomic.Uint64
	unrecordedDenials  atomic.Uint64
}

var _ WorkingSetManager = (*Local)(nil)

// NewLocal returns a manager over the given tiers.
func NewLocal(cfg Config) (*Local, error) {
	m := &Local{
		artifacts: make(map[ArtifactID]*artifact),
		pages:     make(map[PageRef]*pageState),
		personas:  make(map[PersonaID]*AccessTable),
		names:     make(map[PersonaID]string),
	}
	for _, s := range cfg.Tiers {
		r := s.Role()
		if !r.Valid() {
			return nil, fmt.Errorf("genome: NewLocal: store with role %s", r)
		}
		if m.stores[r] != nil {
			return nil, fmt.Errorf("genome: NewLocal: two stores for tier %s", r)
		}
		m.stores[r] = s
	}
	if m.stores[TierCold] == nil {
		m.stores[TierCold] = NewColdStore()
	}
	if w, ok := m.stores[TierWarm].(*WarmStore); ok {
		// Cap Warm at what the kernel will lock: past it every mlock would
		// fail with ENOMEM, and the tier would promise room it has not.
		allow, limited, err := lockAllowance()
		if err != nil {
			return nil, fmt.Errorf("genome: NewLocal: %w", err)
		}
		if limited {
			allow = alignDown(allow)
			if allow == 0 {
				return nil, fmt.Errorf("genome: NewLocal: Warm tier configured (raise ulimit -l, or leave Warm out): %w", ErrMemlockLimit)
			}
			if w.limit <= 0 || w.limit > allow {
				w.limit = allow
			}
		}
	}
	for i := range m.inTier {
		m.inTier[i] = make(map[*pageState]struct{})
		m.policies[i] = CanonicalPolicy(TierRole(i))
	}
	m.target = cfg.PageInTier
	m.noProfiles = cfg.NoProfiles
	if m.target == TierNone {
		for _, r := range []TierRole{TierWarm, TierBench, TierCold} {
			if m.stores[r] != nil {
				m.target = r
				break
			}
		}
	}
	if m.stores[m.target] == nil || m.target == TierFrozen {
		return nil, &UnconfiguredTierError{Role: m.target, Op: "NewLocal page-in tier"}
	}
	if fz, ok := m.stores[TierFrozen].(*FrozenStore); ok {
		m.thawDir = cfg.ThawDir
		if m.thawDir == "" {
			m.thawDir = filepath.Join(fz.Dir(), "thawed")
		}
		if err := os.MkdirAll(m.thawDir, 0o755); err != nil {
			return nil, fmt.Errorf("genome: NewLocal: %w", err)
		}
	}
	n := cfg.EventQueue
	if n <= 0 {
		n = 1024
	}
	m.events.start(n, &m.ctr)
	return m, nil
}

// PageInTier returns the tier PageIn promotes to.
func (m *Local) PageInTier() TierRole { return m.target }

// Store returns the store configured for r, or nil.
func (m *Local) Store(r TierRole) TierStore {
	if int(r) >= numTiers {
		return nil
	}
	return m.stores[r]
}

// RegisterArtifact opens and maps the file of spec and returns its ID.
func (m *Local) RegisterArtifact(spec ArtifactSpec) (ArtifactID, error) {
	if spec.ID.IsZero() {
		spec.ID = NewArtifactID()
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if m.closed {
		return ArtifactID{}, ErrClosed
	}
	if _, ok := m.artifacts[spec.ID]; ok {
		return ArtifactID{}, fmt.Errorf("genome: artifact %s: %w", spec.ID, ErrDuplicate)
	}
	if spec.Experts != nil && (spec.Layers > maxLayers || spec.ExpertCount > maxExperts) {
		return ArtifactID{}, fmt.Errorf("genome: artifact %s: %d layers of %d experts, more than %d of %d: %w", spec.Path, spec.Layers, spec.ExpertCount, maxLayers, maxExperts, ErrBadPage)
	}
	if spec.Experts != nil && (spec.Layers <= 0 || spec.ExpertCount <= 0) {
		return ArtifactID{}, fmt.Errorf("genome: artifact %s: expert resolver with %d layers, %d experts: the expert bytes cannot be guarded: %w", spec.Path, spec.Layers, spec.ExpertCount, ErrBadPage)
	}
	f, err := openArtifactFile(spec.Path)
	if err != nil {
		return ArtifactID{}, err
	}
	a := &artifact{id: spec.ID, spec: spec, file: f, size: f.Size, pages: make(map[*pageState]struct{}), cycle: newCycleState()}
	if a.experts, err = a.expertBytes(); err != nil {
		f.close()
		return ArtifactID{}, err
	}
	m.mu.Lock()
	m.artifacts[spec.ID] = a
	m.mu.Unlock()
	return spec.ID, nil
}

// File returns the file currently backing artifact id (nil while frozen).
func (m *Local) File(id ArtifactID) (*ArtifactFile, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	a, ok := m.artifacts[id]
	if !ok {
		return nil, fmt.Errorf("genome: %s: %w", id, ErrUnknownArtifact)
	}
	return a.file, nil
}

// AttachMappings finds the other mappings of artifact id's file in this
// process (llama.cpp's, typically) in /proc/self/maps and makes the largest
// the primary one, so that mlock and populate act on the very page tables
// inference reads through. Pages already Warm are locked there too. It
// returns how many mappings it attached.
//
// The genome cannot know when their owner unmaps them, so before each
// fault it reads /proc/self/maps again to check that they are still there
// (acting on a stale address could zero whatever memory took its place).
// A caller that will call DetachMappings first, as engine.NewBudget does
// from the model's Close, can say so with AttachMappingsWith and save
// that read.
func (m *Local) AttachMappings(id ArtifactID) (int, error) {
	return m.AttachMappingsWith(id, AttachOptions{})
}

// AttachOptions are AttachMappingsWith's choices.
type AttachOptions struct {
	// DetachedBeforeUnmap promises that DetachMappings is called before
	// any attached mapping is unmapped, so that faults need not check
	// /proc/self/maps for them. The check is a read and parse of the
	// whole file, about 0.9 ms a fault in a process with llama.cpp
	// loaded: in bin/bench's CPU profile (bench-moe, 2 GiB cgroup,
	// -budget 1.5GiB -prefetch, tg32) the expert pager's share fell from
	// 15.6% of the samples to 9.0% without it.
	DetachedBeforeUnmap bool
}

// AttachMappingsWith is AttachMappings with options.
func (m *Local) AttachMappingsWith(id ArtifactID, opt AttachOptions) (int, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	a, ok := m.artifacts[id]
	if !ok {
		return 0, fmt.Errorf("genome: attach %s: %w", id, ErrUnknownArtifact)
	}
	if a.file == nil {
		return 0, fmt.Errorf("genome: attach %s: artifact is frozen: %w", id, ErrNoMapping)
	}
	n, err := a.file.attach(opt.DetachedBeforeUnmap)
	if err != nil {
		return 0, err
	}
	var moved, stayed []Extent // Warm extents now locked through an attached mapping, or still through the own
	for st := range a.pages {
		if st.tier != TierWarm {
			continue
		}
		if err := a.file.lock(st.ext, m.region(st, TierWarm).Release); err != nil {
			return n, err
		}
		for _, e := range st.ext {
			if p, err := a.file.primaryFor(e); err == nil && p != a.file.own {
				moved = append(moved, e)
			} else {
				stayed = append(stayed, e)
			}
		}
	}
	// The kernel counts a page locked in two mappings twice against
	// RLIMIT_MEMLOCK: the own mapping lets go of what the attached one
	// now holds, except OS pages it still holds for others.
	return n, a.file.unlockOwn(moved, stayed)
}

// DetachMappings stops acting on the mappings AttachMappings found; call
// it before llama.cpp frees the model. Warm pages stay locked through the
// genome's own mapping.
func (m *Local) DetachMappings(id ArtifactID) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	a, ok := m.artifacts[id]
	if !ok {
		return fmt.Errorf("genome: detach %s: %w", id, ErrUnknownArtifact)
	}
	if a.file == nil || !a.file.hasForeign() {
		return nil
	}
	if _, err := a.file.revalidate(); err != nil {
		return err
	}
	var warm []Extent
	for st := range a.pages {
		if st.tier == TierWarm {
			warm = append(warm, st.ext...)
		}
	}
	warm = mergeExtents(warm)
	if err := a.file.unlock(warm); err != nil {
		return err
	}
	if err := a.file.detach(); err != nil {
		return err
	}
	return a.file.lock(warm, warm)
}

// revalidate drops a's attached mappings that were unmapped.
// Caller holds m.opMu.
func (m *Local) revalidate(a *artifact) error {
	if a.file == nil {
		return nil
	}
	_, err := a.file.revalidate()
	return err
}

// RegisterPersona adds a persona; a nil Access table means DefaultAccess.
func (m *Local) RegisterPersona(p Persona) error {
	if p.ID.IsZero() {
		return fmt.Errorf("genome: RegisterPersona %q: zero id: %w", p.Name, ErrUnknownPersona)
	}
	t := DefaultAccess
	if p.Access != nil {
		t = *p.Access
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.personas[p.ID]; ok {
		return fmt.Errorf("genome: persona %s: %w", p.ID, ErrDuplicate)
	}
	m.personas[p.ID] = &t
	if p.Name != "" {
		m.names[p.ID] = p.Name
	}
	return nil
}

// RegisterPageOwner makes owner the only persona that may touch the bytes
// of ref: every page that covers any of them, whatever its kind, is
// refused to everyone else (a Whole ref owns the artifact). actor needs
// OpWrite on the regions of those bytes, and is refused if any of them
// already belong to a persona other than owner (unless actor is that
// persona, handing them over).
func (m *Local) RegisterPageOwner(actor PersonaID, ref PageRef, owner PersonaID) error {
	return m.locked(func() (*AccessDenied, error) { return m.registerOwner(actor, ref, owner) })
}

// registerOwner is RegisterPageOwner; it returns a denial for the caller
// to publish once the lock is released. Caller holds m.opMu.
func (m *Local) registerOwner(actor PersonaID, ref PageRef, owner PersonaID) (*AccessDenied, error) {
	if m.closed {
		return nil, ErrClosed
	}
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		return nil, fmt.Errorf("genome: owner of %s: %w", ref, ErrUnknownArtifact)
	}
	raw, err := a.extentsOf(ref)
	if err != nil {
		return nil, err
	}
	g := a.guardOf(raw)
	others := slices.DeleteFunc(slices.Clone(g.owners), func(o PersonaID) bool { return o == owner })
	if d, ok := m.authorize(actor, ref, others, need{g.regions, OpWrite}); !ok {
		return &d, nil
	}
	if _, ok := m.personas[owner]; !ok {
		return nil, fmt.Errorf("genome: owner %s of %s: %w", owner, ref, ErrUnknownPersona)
	}
	merged := mergeExtents(slices.Clone(raw))
	m.mu.Lock()
	defer m.mu.Unlock()
	// Bytes handed over leave their old owner's claims.
	owned := make([]ownership, 0, len(a.owned)+1)
	for _, o := range a.owned {
		if o.owner != owner {
			o.raw = subtractExtents(o.raw, merged)
		}
		if len(o.raw) > 0 && (o.ref != ref || o.owner != owner) {
			owned = append(owned, o)
		}
	}
	a.owned = append(owned, ownership{ref: ref, raw: merged, owner: owner})
	for st := range a.pages {
		st.owners = a.ownersOf(st.raw)
	}
	return nil, nil
}

// eachExpert calls fn with the extents of every expert of a, layer by
// layer. A layer the resolver says has no experts (ErrNoExperts or no
// extents for its first expert: a dense layer of an MoE model) is
// skipped; this is the one place that rule lives.
func (a *artifact) eachExpert(fn func(layer, expert int, ex []Extent) error) error {
	for l := 0; l < a.spec.Layers; l++ {
		for e := 0; e < a.spec.ExpertCount; e++ {
			ex, err := a.spec.Experts(l, e)
			if errors.Is(err, ErrNoExperts) || (err == nil && len(ex) == 0) {
				break
			}
			if err != nil {
				return fmt.Errorf("genome: experts of %s: layer %d expert %d: %w", a.spec.Path, l, e, err)
			}
			if err := fn(l, e, ex); err != nil {
				return err
			}
		}
	}
	return nil
}

// expertBytes returns the bytes of every expert of a, sorted and merged.
func (a *artifact) expertBytes() ([]Extent, error) {
	if a.spec.Experts == nil {
		return nil, nil
	}
	var all []Extent
	err := a.eachExpert(func(l, e int, ex []Extent) error {
		if err := a.checkExtents(ExpertPage(a.id, l, e), ex); err != nil {
			return err
		}
		all = append(all, ex...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return mergeExtents(all), nil
}

// checkExtents checks that every extent of ref lies inside the file.
func (a *artifact) checkExtents(ref PageRef, raw []Extent) error {
	for _, e := range raw {
		if e.Off < 0 || e.Len <= 0 || e.Off > a.size-e.Len {
			return fmt.Errorf("genome: %s: extent [%d+%d] outside file of %d bytes: %w", ref, e.Off, e.Len, a.size, ErrBadPage)
		}
	}
	return nil
}

// extentsOf returns the bytes of ref in a's file, unaligned, in the order
// its views are given. It needs no file: a frozen artifact's pages have
// bytes too.
func (a *artifact) extentsOf(ref PageRef) ([]Extent, error) {
	switch ref.Kind {
	case PageWhole:
		if ref.Offset != (PageOffset{}) {
			return nil, fmt.Errorf("genome: %s: whole page with an offset: %w", ref, ErrBadPage)
		}
		return []Extent{{0, a.size}}, nil
	case PageRange:
		o := ref.Offset
		if o.Layer != 0 || o.Expert != 0 || o.Off < 0 || o.Len <= 0 || o.Off > a.size-o.Len {
			return nil, fmt.Errorf("genome: %s: range outside file of %d bytes (%s): %w", ref, a.size, a.spec.Path, ErrBadPage)
		}
		return []Extent{{o.Off, o.Len}}, nil
	case PageExpert:
		if a.spec.Experts == nil {
			return nil, fmt.Errorf("genome: %s: %w", ref, ErrNoExperts)
		}
		if int64(ref.Offset.Layer) >= int64(a.spec.Layers) || int64(ref.Offset.Expert) >= int64(a.spec.ExpertCount) {
			return nil, fmt.Errorf("genome: %s: the artifact has %d layers of %d experts: %w", ref, a.spec.Layers, a.spec.ExpertCount, ErrBadPage)
		}
		raw, err := a.spec.Experts(int(ref.Offset.Layer), int(ref.Offset.Expert))
		if err != nil {
			return nil, fmt.Errorf("genome: %s: %w", ref, err)
		}
		if len(raw) == 0 {
			return nil, fmt.Errorf("genome: %s: no bytes: %w", ref, ErrNoExperts)
		}
		if err := a.checkExtents(ref, raw); err != nil {
			return nil, err
		}
		return raw, nil
	}
	return nil, fmt.Errorf("genome: %s: %w", ref, ErrBadPage)
}

// guardOf returns the guard of a page of a with bytes raw: the regions
// they lie in, from the bytes, never from the kind of ref that reached
// them, and their owners. Caller holds m.opMu or m.mu.
func (a *artifact) guardOf(raw []Extent) guard {
	g := guard{owners: a.ownersOf(raw)}
	if a.spec.Kind == ArtifactAdapter {
		g.regions = regionBit(RegionAdapters)
		return g
	}
	merged := mergeExtents(slices.Clone(raw))
	if overlaps(merged, a.experts) {
		g.regions |= regionBit(RegionExperts)
	}
	if len(subtractExtents(merged, a.experts)) > 0 {
		g.regions |= regionBit(RegionWeights)
	}
	return g
}

// ownersOf returns the distinct owners of any byte of raw, nil for none.
// Caller holds m.opMu or m.mu.
func (a *artifact) ownersOf(raw []Extent) []PersonaID {
	var out []PersonaID
	for _, o := range a.owned {
		if overlaps(raw, o.raw) && !slices.Contains(out, o.owner) {
			out = append(out, o.owner)
		}
	}
	return out
}

// describe returns ref's record if it has one, its bytes and its guard.
// It creates nothing, so refused requests leave no trace but the denial.
// Caller holds m.opMu or m.mu.
func (m *Local) describe(a *artifact, ref PageRef) (*pageState, []Extent, guard, error) {
	if st := m.pages[ref]; st != nil {
		return st, st.raw, st.guard, nil
	}
	raw, err := a.extentsOf(ref)
	if err != nil {
		return nil, nil, guard{}, err
	}
	return nil, raw, a.guardOf(raw), nil
}

// need is one permission a request needs: op in every region of regions.
type need struct {
	regions regionSet
	op      Op
}

// SetDenialRecorder makes every later denial go to rec before the denied
// call returns, ahead of the bus; rec's error is returned with the denial
// (AccessDeniedError.RecordErr) and counted (Stats.UnrecordedDenials).
// It is the hook for an audit log that must hold every denial, such as
// audit.Recorder.RecordDenial. rec runs on the denied caller's goroutine,
// holding no lock of the manager. nil removes it.
func (m *Local) SetDenialRecorder(rec func(AccessDenied) error) {
	if rec == nil {
		m.denialRec.Store(nil)
		return
	}
	m.denialRec.Store(&rec)
}

// deny counts d, records and publishes it, and returns it as an
// *AccessDeniedError. Faults and evictions go through the queue, which
// drops what does not fit; a denial is published here, synchronously, on
// the denied caller's goroutine, because an audit trail that loses
// denials when the queue is full is one a caller can flood to hide in. A
// denied call is off the paging path, so waiting for the recorder and the
// subscribers costs nothing that matters; a denial may thus reach the bus
// before faults queued earlier. What is not published (no publisher set,
// or Publish failed) is counted in Stats.UnpublishedDenials, and a Publish
// error is also carried in the returned error. Caller holds no lock of m,
// so a subscriber may call back into the manager.
func (m *Local) deny(d AccessDenied) error {
	m.ctr.denials.Add(1)
	err := &AccessDeniedError{Denial: d}
	if rec := m.denialRec.Load(); rec != nil {
		if rerr := (*rec)(d); rerr != nil {
			m.ctr.unrecordedDenials.Add(1)
			err.RecordErr = rerr
		}
	}
	b := m.pub.Load()
	if b == nil {
		m.ctr.unpublishedDenials.Add(1)
		return err
	}
	if perr := b.p.Publish(KeyAccessDenied, d); perr != nil {
		m.ctr.publishErrs.Add(1)
		m.ctr.unpublishedDenials.Add(1)
		err.PublishErr = perr
	}
	return err
}

// authorize checks that actor may do each need's op in each of its
// regions, and that no persona but actor owns a byte of the page (owners);
// it returns the denial, unpublished. Caller holds m.opMu or m.mu.
func (m *Local) authorize(actor PersonaID, ref PageRef, owners []PersonaID, needs ...need) (AccessDenied, bool) {
	d := AccessDenied{Actor: actor, ActorName: m.names[actor], Page: ref}
	if len(needs) > 0 {
		d.Region, d.Op = needs[0].regions.first(), needs[0].op
	}
	t, ok := m.personas[actor]
	if !ok {
		d.Reason = "unknown persona"
		return d, false
	}
	for _, n := range needs {
		if r, ok := t.allowsAll(n.regions, n.op); !ok {
			d.Region, d.Op = r, n.op
			d.Reason = fmt.Sprintf("access table allows %s on %s", t[r], r)
			return d, false
		}
	}
	for _, o := range owners {
		if o != actor {
			d.Owner, d.OwnerName = o, m.names[o]
			d.Reason = "page owned by another persona"
			return d, false
		}
	}
	return d, true
}

// AuditAccess checks that actor may read ref: OpRead in every region its
// bytes lie in (and in RegionArchive while the artifact is frozen), and no
// byte of it owned by another persona.
func (m *Local) AuditAccess(actor PersonaID, ref PageRef) error {
	m.mu.RLock()
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		m.mu.RUnlock()
		return fmt.Errorf("genome: audit %s: %w", ref, ErrUnknownArtifact)
	}
	_, _, g, err := m.describe(a, ref)
	if err != nil {
		m.mu.RUnlock()
		return err
	}
	needs := [2]need{{g.regions, OpRead}, {regionBit(RegionArchive), OpRead}}
	d, ok := m.authorize(actor, ref, g.owners, needs[:needCount(a.frozen)]...)
	m.mu.RUnlock()
	if !ok {
		return m.deny(d)
	}
	return nil
}

// needCount is 2 when a second need applies, else 1.
func needCount(second bool) int {
	if second {
		return 2
	}
	return 1
}

// CheckPermission checks actor's access table for op on region.
func (m *Local) CheckPermission(actor PersonaID, region GenomeRegion, op Op) error {
	m.mu.RLock()
	var d AccessDenied
	ok := false
	if region >= numRegions {
		d = AccessDenied{Actor: actor, ActorName: m.names[actor], Region: region, Op: op, Reason: "no such region"}
	} else {
		d, ok = m.authorize(actor, PageRef{}, nil, need{regionBit(region), op})
	}
	m.mu.RUnlock()
	if !ok {
		return m.deny(d)
	}
	return nil
}

// PageIn implements WorkingSetManager. The resident hit takes a read lock,
// two map lookups and three atomic adds, and does not allocate; a fault
// allocates the PageFault it returns (PageInTo does not).
func (m *Local) PageIn(ctx context.Context, persona PersonaID, ref PageRef) (PageHandle, *PageFault, error) {
	var f PageFault
	h, faulted, err := m.pageInTo(ctx, persona, ref, &f)
	if !faulted {
		return h, nil, err
	}
	return h, newFault(f), err
}

// newFault returns a PageFault of its own holding f.
func newFault(f PageFault) *PageFault { return &f }

// PageInTo is PageIn for a caller that reuses one PageFault, as a decoding
// loop does: a fault is written to *f (which must not be nil) and
// reported by faulted, where PageIn would return a new one. With it a
// fault in steady state allocates nothing on the caller's goroutine (the
// pprof profiles aside, see Config.NoProfiles): the evicted pages'
// records and the events for the bus go through buffers the manager
// reuses, and the payloads the Publisher receives are made by the event
// goroutine. *f is left as it was when the call does not fault.
func (m *Local) PageInTo(ctx context.Context, persona PersonaID, ref PageRef, f *PageFault) (h PageHandle, faulted bool, err error) {
	return m.pageInTo(ctx, persona, ref, f)
}

// pageInTo is PageIn and PageInTo: the resident hit under m.mu.RLock, else
// the slow path under m.opMu. Both exported methods call it directly, so
// the fault profile's stacks start at their caller (recordFault's skip).
func (m *Local) pageInTo(ctx context.Context, persona PersonaID, ref PageRef, f *PageFault) (PageHandle, bool, error) {
	m.mu.RLock()
	if st := m.pages[ref]; st != nil && st.tier >= TierFast && st.tier <= m.target {
		if t := m.personas[persona]; t != nil && st.admits(t, persona, OpRead|OpPage) {
			st.touch(&m.clock)
			if !st.file.handed.Load() {
				st.file.handed.Store(true)
			}
			h := PageHandle{Ref: ref, Tier: st.tier, st: st}
			m.mu.RUnlock()
			m.ctr.hits.Add(1)
			return h, false, nil
		}
	}
	m.mu.RUnlock()
	m.opMu.Lock()
	h, faulted, d, err := m.pageIn(ctx, persona, ref, f)
	m.opMu.Unlock()
	if d != nil {
		return PageHandle{}, false, m.deny(*d)
	}
	return h, faulted, err
}

// pageIn is PageIn's slow path: it writes a fault to *f and reports it by
// faulted, and returns a denial for the caller to publish once the lock
// is released. Caller holds m.opMu.
func (m *Local) pageIn(ctx context.Context, persona PersonaID, ref PageRef, f *PageFault) (h PageHandle, faulted bool, _ *AccessDenied, _ error) {
	if m.closed {
		return PageHandle{}, false, nil, ErrClosed
	}
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		return PageHandle{}, false, nil, fmt.Errorf("genome: PageIn %s: %w", ref, ErrUnknownArtifact)
	}
	st, raw, g, err := m.describe(a, ref)
	if err != nil {
		return PageHandle{}, false, nil, err
	}
	// Reading a frozen page thaws it: the bytes come out of the archive.
	needs := [2]need{{g.regions, OpRead | OpPage}, {regionBit(RegionArchive), OpRead}}
	if d, ok := m.authorize(persona, ref, g.owners, needs[:needCount(a.frozen)]...); !ok {
		return PageHandle{}, false, newDenial(d), nil
	}
	if err := m.revalidate(a); err != nil {
		return PageHandle{}, false, nil, err
	}
	start := time.Now()
	from := TierNone
	if a.frozen {
		if err := m.thaw(ctx, a); err != nil {
			return PageHandle{}, false, nil, err
		}
		from = TierFrozen
	}
	if st == nil {
		st = m.newState(a, ref, raw, g)
	}
	if st.tier >= TierFast && st.tier <= m.target {
		// Another goroutine's fault placed it while we waited for opMu.
		return m.served(st), false, nil, nil
	}
	if from == TierNone {
		from = st.tier
	}
	if st.cyc != nil {
		st.cyc.enter(int(st.ref.Offset.Layer))
	}
	recs, err := m.promote(ctx, st, m.target, m.recs[:0])
	if below := m.below(m.target); err != nil && below < TierCold && noRoom(err) {
		// The page-in tier cannot take the page: larger than the tier, or
		// every byte of it pinned (a small RLIMIT_MEMLOCK spent on pins).
		// The tier below serves it instead of the page-in failing.
		if st.tier == below {
			return m.served(st), false, nil, nil
		}
		recs, err = m.promote(ctx, st, below, recs)
	}
	m.publishEvictions(recs)
	clear(recs)
	m.recs = recs[:0]
	if err != nil {
		return PageHandle{}, false, nil, err
	}
	st.touch(&m.clock)
	*f = PageFault{Persona: persona, Page: ref, From: from, To: st.tier, Bytes: st.cost, Latency: time.Since(start)}
	m.ctr.faults[from].Add(1)
	m.ctr.bytesIn.Add(uint64(st.cost))
	m.recordFault(f)
	m.emitFault(f)
	st.file.handed.Store(true)
	return PageHandle{Ref: ref, Tier: st.tier, st: st}, true, nil, nil
}

// served counts a hit on st, found resident on the slow path, and hands
// it out. Caller holds m.opMu.
func (m *Local) served(st *pageState) PageHandle {
	st.touch(&m.clock)
	m.ctr.hits.Add(1)
	st.file.handed.Store(true)
	return PageHandle{Ref: st.ref, Tier: st.tier, st: st}
}

// noRoom reports whether err is a tier's refusal of a page for lack of
// room it could make: the page is larger than the tier, or the rest is
// pinned.
func noRoom(err error) bool {
	var nc *NoEvictionCandidateError
	return errors.Is(err, ErrPageTooLarge) || errors.As(err, &nc)
}

// newDenial returns an AccessDenied of its own holding d, so that only a
// refused request pays for it.
func newDenial(d AccessDenied) *AccessDenied { return &d }

// newState records ref (in no tier), with the bytes and guard describe
// found. a must not be frozen. Caller holds m.opMu.
func (m *Local) newState(a *artifact, ref PageRef, raw []Extent, g guard) *pageState {
	st := &pageState{ref: ref, art: a, file: a.file, raw: raw, ext: alignExtents(raw, a.size), guard: g}
	st.cost = extentBytes(st.ext)
	if ref.Kind == PageExpert {
		st.cyc = a.cycle
	}
	st.views = make([][]byte, len(raw))
	for i, e := range raw {
		st.views[i] = a.file.view(e)
	}
	m.mu.Lock()
	m.pages[ref] = st
	a.pages[st] = struct{}{}
	a.index.add(st)
	m.mu.Unlock()
	return st
}

// state returns the record of ref, creating it (in no tier) on first use.
// Caller holds m.opMu.
func (m *Local) state(a *artifact, ref PageRef) (*pageState, error) {
	st, raw, g, err := m.describe(a, ref)
	if err != nil || st != nil {
		return st, err
	}
	if a.file == nil {
		return nil, fmt.Errorf("genome: %s: artifact is frozen: %w", ref, ErrBadPage)
	}
	return m.newState(a, ref, raw, g), nil
}

// lookup returns the state of ref for Residency. Caller holds m.opMu.
func (m *Local) lookup(ref PageRef) (*artifact, *pageState, error) {
	if m.closed {
		return nil, nil, ErrClosed
	}
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		return nil, nil, fmt.Errorf("genome: %s: %w", ref, ErrUnknownArtifact)
	}
	if a.frozen {
		return a, nil, nil
	}
	st, err := m.state(a, ref)
	return a, st, err
}

// setTier moves st between the tier sets and keeps the locked profile in
// step with Warm. Caller holds m.opMu.
func (m *Local) setTier(st *pageState, to TierRole) {
	m.mu.Lock()
	delete(m.inTier[st.tier], st)
	st.tier = to
	if to != TierNone {
		m.inTier[to][st] = struct{}{}
	}
	m.mu.Unlock()
	switch {
	case m.noProfiles:
	case to == TierWarm && !st.profiled:
		lockedProfile.Add(st, 3)
		st.profiled = true
	case to != TierWarm && st.profiled:
		lockedProfile.Remove(st)
		st.profiled = false
	}
}

// region builds the Region for st. release lists the tiers whose other
// pages' bytes must not be released. Drop adds to Release the bytes of
// the other pages in Cold that share st's folio window, so that a folio
// straddling st and a page paged out before it is dropped with the last
// of them, and takes out the bytes of every page a resident tier holds.
// Bytes no page covers (dense weights around the experts) are never
// added: they may sit in a huge page the kernel unmapped whole when part
// of it was released, and only a page placed in Cold asks for its bytes
// to go.
//
// The Region and its extents live in m.scratch, reused by the next call:
// the caller hands it to one store call and drops it (stores keep no
// Region past a call), so the paging path builds regions without
// allocating. Caller holds m.opMu.
func (m *Local) region(st *pageState, release ...TierRole) *Region {
	s := &m.scratch
	s.win = appendFolioExtents(s.win[:0], st.ext, st.art.size)
	keep, held, cold := s.keep[:0], s.held[:0], s.cold[:0]
	s.pages = st.art.index.appendOverlapping(s.pages[:0], s.win)
	for _, o := range s.pages {
		if o == st || o.tier == TierNone {
			continue
		}
		spared := slices.Contains(release, o.tier)
		if spared {
			keep = append(keep, o.ext...) // bytes outside st.ext subtract nothing
		}
		switch {
		case spared || o.tier.Resident():
			held = append(held, o.ext...)
		case o.tier == TierCold:
			cold = append(cold, o.ext...)
		}
	}
	clear(s.pages) // hold no page past the call
	s.keep, s.held, s.cold = keep, held, cold
	r := &s.r
	*r = Region{Ref: st.ref, File: st.art.file, Bytes: st.cost, Extents: st.ext}
	r.Release = st.ext
	if len(keep) > 0 {
		s.release = appendSubtracted(s.release[:0], st.ext, mergeExtents(keep))
		r.Release = s.release
	}
	r.Drop = r.Release
	if len(cold) > 0 {
		// The neighbours' bytes inside the window only: a Cold Whole page
		// must not turn each eviction into a walk of the whole file.
		s.tmp = appendSubtracted(s.tmp[:0], s.win, mergeExtents(cold))
		near := appendSubtracted(s.near[:0], s.win, s.tmp)
		s.near = near
		s.tmp = mergeExtents(append(append(s.tmp[:0], near...), r.Release...))
		s.drop = appendSubtracted(s.drop[:0], s.tmp, mergeExtents(held))
		r.Drop = s.drop
	}
	return r
}

// regionScratch is where region builds its Region, reused from one call
// to the next. Guarded by Local.opMu.
type regionScratch struct {
	r                     Region
	win, keep, held, cold []Extent
	release, near, drop   []Extent
	tmp                   []Extent
	pages                 []*pageState // the pages overlapping win, cleared after use
}

// below returns the next configured tier under t that automatic eviction
// moves pages to (Frozen is only reached by request).
func (m *Local) below(t TierRole) TierRole {
	for r := t + 1; r <= TierCold; r++ {
		if m.stores[r] != nil {
			return r
		}
	}
	return TierCold
}

// roomScratch is makeRoom's scratch for one tier. Guarded by Local.opMu.
type roomScratch struct {
	cands   map[*pageState]struct{}
	victims []*pageState
}

// errSkipTier is makeRoom's internal answer when admission rejects a
// demoted page: it should skip the tier and go further down.
var errSkipTier = errors.New("genome: admission rejected")

// makeRoom evicts pages of tier t, by t's policy, until need bytes fit.
// demoted says the incoming page comes from above, so t's admission rule
// applies. leaving, when not nil, is the page a promotion is taking out
// of its tier: if that tier is t, its bytes count as free and it is no
// candidate, so a page moving from Bench up to Warm swaps places with
// Warm's victim instead of making a full Bench drop a page (at times the
// very one being promoted) to disk. Caller holds m.opMu.
func (m *Local) makeRoom(ctx context.Context, t TierRole, need int64, incoming, leaving *pageState, demoted bool, recs []EvictionRecord) ([]EvictionRecord, error) {
	c := m.stores[t].Capacity()
	if c.Unlimited() {
		return recs, nil
	}
	if need > c.Limit {
		return recs, fmt.Errorf("genome: %s is %d bytes, tier %s holds %d: %w", incoming.ref, need, t, c.Limit, ErrPageTooLarge)
	}
	// Not c.Available(), which stops at 0: a tier a promotion is leaving
	// stands over its limit while the victims it takes in are placed (see
	// promote), and counting it as merely full would let each of several
	// victims use the leaving page's bytes once more.
	free := c.Limit - c.Used
	var out *pageState // leaving, when it is leaving t
	if leaving != nil && leaving.tier == t {
		out = leaving
		free += out.cost
	}
	if need <= free {
		return recs, nil
	}
	// The candidates and victims are t's scratch: makeRoom recurses only
	// into tiers below t, so no call in flight shares them.
	room := &m.rooms[t]
	if room.cands == nil {
		room.cands = make(map[*pageState]struct{})
	}
	cands := room.cands
	clear(cands)
	defer clear(cands) // hold no page past the call
	m.mu.RLock()
	var pinned int64
	for st := range m.inTier[t] {
		switch {
		case st == incoming || st == out:
		case st.pins > 0:
			pinned += st.cost
		default:
			cands[st] = struct{}{}
		}
	}
	m.mu.RUnlock()
	victims := room.victims[:0]
	defer func() { clear(victims); room.victims = victims[:0] }()
	for free < need {
		v := pickVictim(m.policies[t], cands)
		if v == nil {
			return recs, &NoEvictionCandidateError{Role: t, Need: need, Free: free, Pinned: pinned, Incoming: incoming.ref}
		}
		delete(cands, v)
		victims = append(victims, v)
		free += v.cost
	}
	if demoted && !admitDemoted(m.policies[t], incoming, victims) {
		return recs, errSkipTier
	}
	for _, v := range victims {
		var err error
		if recs, err = m.demote(ctx, v, m.below(t), EvictCapacity, m.policies[t], leaving, recs); err != nil {
			return recs, err
		}
	}
	return recs, nil
}

// demote moves st down to tier to (or further, when to's admission
// rejects it). leaving is the page a promotion is taking out of its tier,
// or nil (see makeRoom). Caller holds m.opMu.
func (m *Local) demote(ctx context.Context, st *pageState, to TierRole, reason EvictionReason, pol EvictionPolicy, leaving *pageState, recs []EvictionRecord) ([]EvictionRecord, error) {
	from := st.tier
	for to < TierCold {
		var err error
		recs, err = m.makeRoom(ctx, to, st.cost, st, leaving, reason == EvictCapacity, recs)
		if err == errSkipTier {
			to = m.below(to)
			continue
		}
		if err != nil {
			return recs, err
		}
		break
	}
	// Leave the old tier's bookkeeping first so new hits take the slow path.
	m.setTier(st, to)
	if from != TierNone {
		if err := m.stores[from].Evict(ctx, m.region(st, from)); err != nil {
			return recs, err
		}
	}
	rec := EvictionRecord{Page: st.ref, From: from, To: to, Bytes: st.cost, Reason: reason, Policy: pol}
	keep := []TierRole{TierFast, TierWarm, TierBench}
	if to == TierWarm {
		keep = keep[1:2] // what a failed lock must leave locked
	}
	if err := m.stores[to].Write(ctx, m.region(st, keep...)); err != nil {
		if to == TierCold {
			return recs, err // Cold holds the page all the same: the file has it
		}
		// st has left from, so it goes where it needs no memory, and the
		// tiers' charges stay those of the pages they hold.
		m.setTier(st, TierCold)
		return recs, errors.Join(err, m.stores[TierCold].Write(ctx, m.region(st, keep...)))
	}
	if to == TierCold {
		n, err := st.art.file.resident(st.ext)
		if err != nil {
			return recs, err
		}
		rec.StillResident = n
	}
	m.ctr.evictions.Add(1)
	m.ctr.bytesOut.Add(uint64(st.cost))
	return append(recs, rec), nil
}

// promote moves st up to tier to, evicting by to's policy to make room.
// The victims pushed down into the tier st is leaving find its bytes
// already free there (makeRoom's leaving), so the two swap; st's old tier
// gives up its charge only once st is in to, and may stand over its limit
// by st's bytes until then. Caller holds m.opMu.
func (m *Local) promote(ctx context.Context, st *pageState, to TierRole, recs []EvictionRecord) ([]EvictionRecord, error) {
	recs, err := m.makeRoom(ctx, to, st.cost, st, st, false, recs)
	if err != nil {
		return recs, err
	}
	from := st.tier
	r := m.region(st)
	if to == TierWarm {
		r = m.region(st, TierWarm) // what a failed lock must leave locked
	}
	if err := m.stores[to].Read(ctx, r); err != nil {
		return recs, err
	}
	if from != TierNone {
		if err := m.stores[from].Evict(ctx, m.region(st, from)); err != nil {
			return recs, err
		}
	}
	m.setTier(st, to)
	return recs, nil
}

func (m *Local) publishEvictions(recs []EvictionRecord) {
	for i := range recs {
		m.emitEviction(&recs[i])
	}
}

// PageOut implements WorkingSetManager. A page never placed may be paged
// out too: PageOut(engine, WholePage(a), TierCold) after llama.cpp's
// MAP_POPULATE load drops every byte of a that no Warm or Bench page holds,
// which is how a budget is enforced after load.
func (m *Local) PageOut(ctx context.Context, actor PersonaID, ref PageRef, to TierRole) error {
	if !to.Valid() || m.stores[to] == nil {
		return &UnconfiguredTierError{Role: to, Op: "PageOut"}
	}
	return m.locked(func() (*AccessDenied, error) { return m.pageOut(ctx, actor, ref, to) })
}

// pageOut is PageOut; it returns a denial for the caller to publish once
// the lock is released. Caller holds m.opMu.
func (m *Local) pageOut(ctx context.Context, actor PersonaID, ref PageRef, to TierRole) (*AccessDenied, error) {
	if m.closed {
		return nil, ErrClosed
	}
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		return nil, fmt.Errorf("genome: PageOut %s: %w", ref, ErrUnknownArtifact)
	}
	st, raw, g, err := m.describe(a, ref)
	if err != nil {
		return nil, err
	}
	// Freezing writes the artifact into the archive.
	needs := [2]need{{g.regions, OpEvict}, {regionBit(RegionArchive), OpWrite}}
	if d, ok := m.authorize(actor, ref, g.owners, needs[:needCount(to == TierFrozen)]...); !ok {
		return &d, nil
	}
	if err := m.revalidate(a); err != nil {
		return nil, err
	}
	if to == TierFrozen {
		return nil, m.freeze(ctx, a, ref)
	}
	if a.frozen {
		return nil, fmt.Errorf("genome: PageOut %s to %s: artifact is frozen: %w", ref, to, ErrBadPage)
	}
	if st == nil {
		st = m.newState(a, ref, raw, g)
	}
	if st.pins > 0 {
		return nil, fmt.Errorf("genome: PageOut %s: %w", ref, ErrPinned)
	}
	if st.tier == to {
		return nil, nil
	}
	if st.tier != TierNone && to.Above(st.tier) {
		return nil, fmt.Errorf("genome: PageOut %s: tier %s is above %s; use PageIn: %w", ref, to, st.tier, ErrBadPage)
	}
	recs, err := m.demote(ctx, st, to, EvictRequest, PolicyNone, nil, nil)
	m.publishEvictions(recs)
	return nil, err
}

// locked runs op under m.opMu and publishes the denial op returns, if any,
// once the lock is released (the denial recorder may wait for an fsync).
func (m *Local) locked(op func() (*AccessDenied, error)) error {
	m.opMu.Lock()
	d, err := op()
	m.opMu.Unlock()
	if d != nil {
		return m.deny(*d)
	}
	return err
}

// Pin implements WorkingSetManager.
func (m *Local) Pin(actor PersonaID, ref PageRef) error {
	return m.locked(func() (*AccessDenied, error) { return m.pin(actor, ref) })
}

// pin is Pin; it returns a denial for the caller to publish once the lock
// is released. Caller holds m.opMu.
func (m *Local) pin(actor PersonaID, ref PageRef) (*AccessDenied, error) {
	if m.closed {
		return nil, ErrClosed
	}
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		return nil, fmt.Errorf("genome: Pin %s: %w", ref, ErrUnknownArtifact)
	}
	st, raw, g, err := m.describe(a, ref)
	if err != nil {
		return nil, err
	}
	if d, ok := m.authorize(actor, ref, g.owners, need{g.regions, OpPage}); !ok {
		return &d, nil
	}
	if a.frozen {
		return nil, fmt.Errorf("genome: Pin %s: artifact is frozen: %w", ref, ErrBadPage)
	}
	if st == nil {
		st = m.newState(a, ref, raw, g)
	}
	m.mu.Lock()
	if st.pinners == nil {
		st.pinners = make(map[PersonaID]int32)
	}
	st.pinners[actor]++
	st.pins++
	m.mu.Unlock()
	return nil, nil
}

// Unpin implements WorkingSetManager. It needs no permission but the pin:
// a persona whose rights were narrowed since, or whose page has gained
// another owner, can still let go of what it holds.
func (m *Local) Unpin(actor PersonaID, ref PageRef) error {
	return m.locked(func() (*AccessDenied, error) { return m.unpin(actor, ref) })
}

// unpin is Unpin; it returns a denial for the caller to publish once the
// lock is released. Caller holds m.opMu.
func (m *Local) unpin(actor PersonaID, ref PageRef) (*AccessDenied, error) {
	if m.closed {
		return nil, ErrClosed
	}
	if _, ok := m.artifacts[ref.Artifact]; !ok {
		return nil, fmt.Errorf("genome: Unpin %s: %w", ref, ErrUnknownArtifact)
	}
	if d, ok := m.authorize(actor, ref, nil); !ok {
		return &d, nil
	}
	st := m.pages[ref]
	if st == nil || st.pinners[actor] == 0 {
		return nil, fmt.Errorf("genome: Unpin %s: not pinned by %s: %w", ref, actor, ErrNotPinned)
	}
	m.mu.Lock()
	if st.pinners[actor]--; st.pinners[actor] == 0 {
		delete(st.pinners, actor)
	}
	st.pins--
	m.mu.Unlock()
	return nil, nil
}

// freeze archives artifact a into the Frozen tier. Every page of a is
// first moved to Cold; the file is kept mapped (retired) until Close, so
// handles taken earlier stay readable, and is deleted only if the manager
// thawed it itself. Caller holds m.opMu.
func (m *Local) freeze(ctx context.Context, a *artifact, ref PageRef) error {
	if ref.Kind != PageWhole {
		return fmt.Errorf("genome: PageOut %s to frozen: only whole artifacts freeze: %w", ref, ErrBadPage)
	}
	if a.frozen {
		return nil
	}
	if len(a.file.maps) > 1 {
		return fmt.Errorf("genome: freeze %s: file mapped elsewhere in this process: %w", a.file.Path, ErrInUse)
	}
	var placed []*pageState
	for st := range a.pages {
		if st.pins > 0 {
			return fmt.Errorf("genome: freeze %s: page %s: %w", a.file.Path, st.ref, ErrPinned)
		}
		placed = append(placed, st)
	}
	var recs []EvictionRecord
	defer func() { m.publishEvictions(recs) }()
	for _, st := range placed {
		if st.tier != TierNone && st.tier != TierCold {
			var err error
			if recs, err = m.demote(ctx, st, TierCold, EvictRequest, PolicyNone, nil, recs); err != nil {
				return err
			}
		}
	}
	whole := &Region{Ref: WholePage(a.id), File: a.file, Bytes: a.size}
	if err := m.stores[TierFrozen].Write(ctx, whole); err != nil {
		return err
	}
	for _, st := range placed {
		if st.tier == TierCold {
			if err := m.stores[TierCold].Evict(ctx, m.region(st)); err != nil {
				return err
			}
		}
		m.setTier(st, TierNone)
	}
	m.mu.Lock()
	for _, st := range placed {
		delete(m.pages, st.ref)
	}
	a.pages = make(map[*pageState]struct{})
	a.index.reset()
	m.mu.Unlock()
	if err := a.file.evict([]Extent{{0, alignUp(a.size)}}, nil); err != nil {
		return err
	}
	if a.thawed {
		if err := os.Remove(a.file.Path); err != nil {
			return fmt.Errorf("genome: freeze: %w", err)
		}
	}
	m.mu.Lock()
	a.retired = append(a.retired, a.file)
	a.file = nil
	a.frozen = true
	m.mu.Unlock()
	recs = append(recs, EvictionRecord{Page: ref, From: TierCold, To: TierFrozen, Bytes: a.size, Reason: EvictRequest})
	m.ctr.evictions.Add(1)
	return nil
}

// thaw restores frozen artifact a into a Cold file in the thaw dir.
// Caller holds m.opMu.
func (m *Local) thaw(ctx context.Context, a *artifact) error {
	fz, ok := m.stores[TierFrozen].(*FrozenStore)
	if !ok {
		return &UnconfiguredTierError{Role: TierFrozen, Op: "thaw"}
	}
	d, ok := fz.Digest(a.id)
	if !ok {
		return fmt.Errorf("genome: thaw %s: no archive: %w", a.id, ErrUnknownArtifact)
	}
	dst := filepath.Join(m.thawDir, fmt.Sprintf("%s-%.12s", a.id, d))
	whole := &Region{Ref: WholePage(a.id), File: &ArtifactFile{Path: dst}, Bytes: a.size}
	if err := fz.Read(ctx, whole); err != nil {
		return err
	}
	f, err := openArtifactFile(dst)
	if err != nil {
		return err
	}
	if err := fz.Evict(ctx, whole); err != nil {
		f.close()
		return err
	}
	m.mu.Lock()
	a.file, a.thawed, a.frozen = f, true, false
	m.mu.Unlock()
	return nil
}

// Extents returns the bytes a page-in of ref reads: its ranges of the
// artifact's file rounded out to OS pages, sorted and merged, in a slice
// of the caller's. It moves nothing. It is for a reader that warms the
// page cache ahead of a PageIn (the engine's expert prefetch), which the
// page-in then finds cached: the page's tier and the tiers' accounting
// stay the genome's alone. persona needs what PageIn needs of ref
// (OpRead|OpPage on its regions, and no byte owned by another).
func (m *Local) Extents(persona PersonaID, ref PageRef) ([]Extent, error) {
	m.mu.RLock()
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		m.mu.RUnlock()
		return nil, fmt.Errorf("genome: extents of %s: %w", ref, ErrUnknownArtifact)
	}
	_, raw, g, err := m.describe(a, ref)
	if err != nil {
		m.mu.RUnlock()
		return nil, err
	}
	d, ok := m.authorize(persona, ref, g.owners, need{g.regions, OpRead | OpPage})
	m.mu.RUnlock()
	if !ok {
		return nil, m.deny(d)
	}
	return alignExtents(raw, a.size), nil
}

// TierOf returns the tier page ref is in now, TierNone when the genome has
// never placed it (or its artifact is frozen or unknown). It takes a read
// lock and a map lookup and does not allocate; the answer may be stale by
// the time the caller acts on it.
func (m *Local) TierOf(ref PageRef) TierRole {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if st := m.pages[ref]; st != nil {
		return st.tier
	}
	return TierNone
}

// Residency measures with mincore how many bytes of ref's OS pages are in
// memory, and how many OS-page bytes the page spans.
func (m *Local) Residency(ref PageRef) (resident, total int64, err error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	a, st, err := m.lookup(ref)
	if err != nil {
		return 0, 0, err
	}
	if st == nil {
		return 0, alignUp(a.size), nil
	}
	n, err := a.file.resident(st.ext)
	return n, st.cost, err
}

// Pages lists the pages of kind k in artifact id: the Whole page, or every
// (layer, expert) the resolver knows. Layers without experts are skipped.
func (m *Local) Pages(id ArtifactID, k PageKind) ([]PageRef, error) {
	m.opMu.Lock()
	a, ok := m.artifacts[id]
	m.opMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("genome: pages of %s: %w", id, ErrUnknownArtifact)
	}
	switch k {
	case PageWhole:
		return []PageRef{WholePage(id)}, nil
	case PageExpert:
		if a.spec.Experts == nil {
			return nil, fmt.Errorf("genome: pages of %s: %w", id, ErrNoExperts)
		}
		var out []PageRef
		err := a.eachExpert(func(l, e int, _ []Extent) error {
			out = append(out, ExpertPage(id, l, e))
			return nil
		})
		if err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("genome: pages of %s: kind %s is not enumerable; use RangePages: %w", id, k, ErrBadPage)
}

// RangePages splits artifact id into Range pages of chunk bytes (the last
// may be shorter). chunk is rounded up to the OS page size.
func (m *Local) RangePages(id ArtifactID, chunk int64) ([]PageRef, error) {
	m.opMu.Lock()
	a, ok := m.artifacts[id]
	m.opMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("genome: pages of %s: %w", id, ErrUnknownArtifact)
	}
	if chunk <= 0 {
		return nil, fmt.Errorf("genome: range pages of %s: chunk %d: %w", id, chunk, ErrBadPage)
	}
	chunk = alignUp(chunk)
	var out []PageRef
	for off := int64(0); off < a.size; off += chunk {
		out = append(out, RangePage(id, off, min(chunk, a.size-off)))
	}
	return out, nil
}

// WorkingSet implements WorkingSetManager.
func (m *Local) WorkingSet() WorkingSet {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var w WorkingSet
	for _, st := range m.pages {
		if st.tier == TierNone {
			continue
		}
		w.Pages = append(w.Pages, ResidentPage{Ref: st.ref, Tier: st.tier, Bytes: st.cost, Pinned: st.pins > 0, Owner: firstOwner(st.owners), Hits: st.hits.Load()})
	}
	for _, a := range m.artifacts {
		if a.frozen {
			w.Pages = append(w.Pages, ResidentPage{Ref: WholePage(a.id), Tier: TierFrozen, Bytes: a.size, Owner: firstOwner(a.ownersOf([]Extent{{0, a.size}}))})
		}
	}
	w.Capacity = m.capacities()
	return w
}

// firstOwner returns the first of owners, or the zero PersonaID.
func firstOwner(owners []PersonaID) PersonaID {
	if len(owners) == 0 {
		return PersonaID{}
	}
	return owners[0]
}

func (m *Local) capacities() []TierCapacity {
	var cs []TierCapacity
	for _, s := range m.stores {
		if s != nil {
			cs = append(cs, s.Capacity())
		}
	}
	return cs
}

// Close unlocks every Warm page, closes every file, stops the event
// goroutine (after delivering what is queued) and clears the profiles of
// this manager's entries. It is idempotent. A file's mapping is unmapped,
// unless PageIn handed out handles over it: those are poisoned (see
// PageHandle), and the mapping's address range stays reserved, read-only
// and empty, for the life of the process.
func (m *Local) Close() error {
	m.opMu.Lock()
	if m.closed {
		m.opMu.Unlock()
		return nil
	}
	m.closed = true
	// Empty the maps first: a resident hit (mu.RLock only) must not hand
	// out a handle on a file retire is about to unmap.
	arts := m.artifacts
	m.mu.Lock()
	m.pages = make(map[PageRef]*pageState)
	m.artifacts = make(map[ArtifactID]*artifact)
	for i := range m.inTier {
		m.inTier[i] = make(map[*pageState]struct{})
	}
	m.mu.Unlock()
	var first error
	for _, a := range arts {
		valid := true
		if err := m.revalidate(a); err != nil {
			valid = false
			if first == nil {
				first = err
			}
		}
		// Warm pages are unlocked in every mapping that locked them,
		// llama.cpp's included, before it is detached.
		for st := range a.pages {
			if st.tier == TierWarm {
				if err := a.file.unlock(st.ext); err != nil && first == nil {
					first = err
				}
			}
			if st.profiled {
				lockedProfile.Remove(st)
				st.profiled = false
			}
		}
		if valid && a.file != nil && a.file.hasForeign() {
			// Closing without DetachMappings must not leave MADV_RANDOM
			// on llama.cpp's mapping: inference would then fault one
			// page at a time for the rest of the model's life.
			if err := a.file.detach(); err != nil && first == nil {
				first = err
			}
		}
		for _, f := range append(a.retired, a.file) {
			if f != nil {
				if err := f.retire(); err != nil && first == nil {
					first = err
				}
			}
		}
	}
	for i, e := range m.faultRing {
		if e != nil {
			faultProfile.Remove(e)
			m.faultRing[i] = nil
		}
	}
	m.opMu.Unlock()
	m.events.stop()
	return first
}
