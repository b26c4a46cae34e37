package genome

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// WorkingSetManager pages weights, experts and adapters between the tiers.
// Implementations are safe for concurrent use.
type WorkingSetManager interface {
	// PageIn makes the page resident in the manager's page-in tier (Warm
	// when configured) for persona. A page already there is a hit: no
	// fault, no syscall. Otherwise the configured tiers are walked top-down
	// to find the page, it is promoted, and the fault is returned.
	PageIn(ctx context.Context, persona PersonaID, ref PageRef) (PageHandle, *PageFault, error)
	// PageOut moves the page down to tier to. A pinned page is skipped
	// with ErrPinned; an unconfigured tier is an *UnconfiguredTierError.
	PageOut(ctx context.Context, ref PageRef, to TierRole) error
	// Pin keeps the page where it is: eviction skips it until Unpin.
	Pin(ref PageRef) error
	// Unpin undoes one Pin.
	Unpin(ref PageRef) error
	// WorkingSet returns a snapshot of the placed pages and tier capacities.
	WorkingSet() WorkingSet
	RegisterPersona(p Persona) error
	// RegisterPageOwner makes owner the only persona that may touch ref
	// (every page of the artifact, for a Whole ref).
	RegisterPageOwner(ref PageRef, owner PersonaID) error
	// AuditAccess checks that actor may read page ref; a denial is
	// published and returned as an *AccessDeniedError.
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
	// ExpertCount bound the enumeration in Pages.
	Experts     ExpertResolver
	Layers      int
	ExpertCount int
}

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
func Budget(budget int64) ([]TierStore, error) {
	if budget < int64(pageSize) {
		return nil, fmt.Errorf("genome: budget of %d bytes, OS page %d: %w", budget, pageSize, ErrBudgetTooSmall)
	}
	warm := alignDown(budget / 2)
	allow, limited, err := lockAllowance()
	if err != nil {
		return nil, err
	}
	if limited {
		warm = min(warm, alignDown(allow))
	}
	tiers := []TierStore{NewBenchStore(alignDown(budget - warm)), NewColdStore()}
	if warm > 0 {
		tiers = append([]TierStore{NewWarmStore(warm)}, tiers...)
	}
	return tiers, nil
}

// artifact is a registered file. Fields are guarded by Local.opMu; file is
// also read under Local.mu.
type artifact struct {
	id      ArtifactID
	spec    ArtifactSpec
	file    *ArtifactFile   // nil while frozen
	retired []*ArtifactFile // files replaced by a freeze; unmapped at Close so old handles stay readable
	thawed  bool            // file lives in the thaw dir and is the manager's to delete
	frozen  bool
	size    int64
	pages   map[*pageState]struct{}
}

// pageState is the manager's record of one page. The extents, cost,
// region and views are immutable; tier, pins and owner are written with
// both opMu and mu held, so holding either one is enough to read them.
// lastAccess and hits are access samples updated with atomics on the hit
// path; racing updates may be lost, as ristretto allows.
type pageState struct {
	ref    PageRef
	art    *artifact
	file   *ArtifactFile // the file views point into (art.file changes on freeze)
	raw    []Extent
	ext    []Extent
	cost   int64
	region GenomeRegion
	views  [][]byte

	tier     TierRole
	pins     int32
	owner    PersonaID
	profiled bool // in lockedProfile

	lastAccess atomic.Int64
	hits       atomic.Uint64
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
	owners    map[PageRef]PersonaID

	clock atomic.Int64
	ctr   counters

	faultRing [faultRingLen]*faultEntry // caller holds opMu
	faultNext int

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
}

var _ WorkingSetManager = (*Local)(nil)

// NewLocal returns a manager over the given tiers.
func NewLocal(cfg Config) (*Local, error) {
	m := &Local{
		artifacts: make(map[ArtifactID]*artifact),
		pages:     make(map[PageRef]*pageState),
		personas:  make(map[PersonaID]*AccessTable),
		owners:    make(map[PageRef]PersonaID),
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
	f, err := openArtifactFile(spec.Path)
	if err != nil {
		return ArtifactID{}, err
	}
	a := &artifact{id: spec.ID, spec: spec, file: f, size: f.Size, pages: make(map[*pageState]struct{})}
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
func (m *Local) AttachMappings(id ArtifactID) (int, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	a, ok := m.artifacts[id]
	if !ok {
		return 0, fmt.Errorf("genome: attach %s: %w", id, ErrUnknownArtifact)
	}
	if a.file == nil {
		return 0, fmt.Errorf("genome: attach %s: artifact is frozen: %w", id, ErrNoMapping)
	}
	n, err := a.file.attach()
	if err != nil {
		return 0, err
	}
	for st := range a.pages {
		if st.tier == TierWarm {
			if err := a.file.lock(st.ext, m.region(st, TierWarm).Release); err != nil {
				return n, err
			}
		}
	}
	return n, nil
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
	return nil
}

// RegisterPageOwner makes owner the only persona that may touch ref. A
// Whole ref owns every page of the artifact.
func (m *Local) RegisterPageOwner(ref PageRef, owner PersonaID) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		return fmt.Errorf("genome: owner of %s: %w", ref, ErrUnknownArtifact)
	}
	if _, ok := m.personas[owner]; !ok {
		return fmt.Errorf("genome: owner %s of %s: %w", owner, ref, ErrUnknownPersona)
	}
	m.owners[ref] = owner
	for st := range a.pages {
		st.owner = m.ownerOf(st.ref)
	}
	return nil
}

// ownerOf returns the owner of ref: its own, else its artifact's.
// Caller holds m.mu.
func (m *Local) ownerOf(ref PageRef) PersonaID {
	if o, ok := m.owners[ref]; ok {
		return o
	}
	return m.owners[WholePage(ref.Artifact)]
}

// regionOf returns the region a page of a is guarded as.
func regionOf(a *artifact, k PageKind) GenomeRegion {
	switch {
	case a.spec.Kind == ArtifactAdapter:
		return RegionAdapters
	case k == PageExpert:
		return RegionExperts
	}
	return RegionWeights
}

// deny builds, counts and publishes a denial. Safe without locks.
func (m *Local) deny(d AccessDenied) error {
	m.ctr.denials.Add(1)
	m.emit(KeyAccessDenied, d)
	return &AccessDeniedError{Denial: d}
}

// authorize checks actor for op on a page of region with owner; it returns
// the denial, unpublished. Caller holds m.mu.
func (m *Local) authorize(actor PersonaID, ref PageRef, region GenomeRegion, owner PersonaID, op Op) (AccessDenied, bool) {
	d := AccessDenied{Actor: actor, Page: ref, Region: region, Op: op}
	t, ok := m.personas[actor]
	switch {
	case !ok:
		d.Reason = "unknown persona"
	case region >= numRegions:
		d.Reason = "no such region"
	case !t.Allows(region, op):
		d.Reason = fmt.Sprintf("access table allows %s on %s", t[region], region)
	case !owner.IsZero() && owner != actor:
		d.Owner = owner
		d.Reason = "page owned by another persona"
	default:
		return d, true
	}
	return d, false
}

// AuditAccess checks that actor may read ref.
func (m *Local) AuditAccess(actor PersonaID, ref PageRef) error {
	m.mu.RLock()
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		m.mu.RUnlock()
		return fmt.Errorf("genome: audit %s: %w", ref, ErrUnknownArtifact)
	}
	d, ok := m.authorize(actor, ref, regionOf(a, ref.Kind), m.ownerOf(ref), OpRead)
	m.mu.RUnlock()
	if !ok {
		return m.deny(d)
	}
	return nil
}

// CheckPermission checks actor's access table for op on region.
func (m *Local) CheckPermission(actor PersonaID, region GenomeRegion, op Op) error {
	m.mu.RLock()
	d, ok := m.authorize(actor, PageRef{}, region, PersonaID{}, op)
	m.mu.RUnlock()
	if !ok {
		return m.deny(d)
	}
	return nil
}

// PageIn implements WorkingSetManager. The resident hit takes a read lock,
// two map lookups and three atomic adds, and does not allocate.
func (m *Local) PageIn(ctx context.Context, persona PersonaID, ref PageRef) (PageHandle, *PageFault, error) {
	m.mu.RLock()
	if st := m.pages[ref]; st != nil && st.tier >= TierFast && st.tier <= m.target {
		if t := m.personas[persona]; t != nil && t.Allows(st.region, OpPage) && (st.owner.IsZero() || st.owner == persona) {
			st.lastAccess.Store(m.clock.Add(1))
			st.hits.Add(1)
			if !st.file.handed.Load() {
				st.file.handed.Store(true)
			}
			h := PageHandle{Ref: ref, Tier: st.tier, st: st}
			m.mu.RUnlock()
			m.ctr.hits.Add(1)
			return h, nil, nil
		}
	}
	m.mu.RUnlock()
	return m.pageInSlow(ctx, persona, ref)
}

func (m *Local) pageInSlow(ctx context.Context, persona PersonaID, ref PageRef) (PageHandle, *PageFault, error) {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	if m.closed {
		return PageHandle{}, nil, ErrClosed
	}
	a, ok := m.artifacts[ref.Artifact]
	if !ok {
		return PageHandle{}, nil, fmt.Errorf("genome: PageIn %s: %w", ref, ErrUnknownArtifact)
	}
	m.mu.RLock()
	d, ok := m.authorize(persona, ref, regionOf(a, ref.Kind), m.ownerOf(ref), OpPage)
	m.mu.RUnlock()
	if !ok {
		return PageHandle{}, nil, m.deny(d)
	}
	if err := m.revalidate(a); err != nil {
		return PageHandle{}, nil, err
	}
	start := time.Now()
	from := TierNone
	var recs []EvictionRecord
	if a.frozen {
		if err := m.thaw(ctx, a); err != nil {
			return PageHandle{}, nil, err
		}
		from = TierFrozen
	}
	st, err := m.state(a, ref)
	if err != nil {
		return PageHandle{}, nil, err
	}
	if st.tier >= TierFast && st.tier <= m.target {
		// Another goroutine's fault placed it while we waited for opMu.
		st.lastAccess.Store(m.clock.Add(1))
		st.hits.Add(1)
		m.ctr.hits.Add(1)
		st.file.handed.Store(true)
		return PageHandle{Ref: ref, Tier: st.tier, st: st}, nil, nil
	}
	if from == TierNone {
		from = st.tier
	}
	recs, err = m.promote(ctx, st, m.target, recs)
	m.publishEvictions(recs)
	if err != nil {
		return PageHandle{}, nil, err
	}
	st.lastAccess.Store(m.clock.Add(1))
	st.hits.Add(1)
	f := &PageFault{Persona: persona, Page: ref, From: from, To: m.target, Bytes: st.cost, Latency: time.Since(start)}
	m.ctr.faults[from].Add(1)
	m.ctr.bytesIn.Add(uint64(st.cost))
	m.recordFault(f)
	m.emit(KeyPageFault, *f)
	st.file.handed.Store(true)
	return PageHandle{Ref: ref, Tier: st.tier, st: st}, f, nil
}

// state returns the record of ref, creating it (in no tier) on first use.
// Caller holds m.opMu.
func (m *Local) state(a *artifact, ref PageRef) (*pageState, error) {
	if st := m.pages[ref]; st != nil {
		return st, nil
	}
	if a.file == nil {
		return nil, fmt.Errorf("genome: %s: artifact is frozen: %w", ref, ErrBadPage)
	}
	var raw []Extent
	switch ref.Kind {
	case PageWhole:
		if ref.Offset != (PageOffset{}) {
			return nil, fmt.Errorf("genome: %s: whole page with an offset: %w", ref, ErrBadPage)
		}
		raw = []Extent{{0, a.size}}
	case PageRange:
		o := ref.Offset
		if o.Layer != 0 || o.Expert != 0 || o.Off < 0 || o.Len <= 0 || o.Off > a.size-o.Len {
			return nil, fmt.Errorf("genome: %s: range outside file of %d bytes (%s): %w", ref, a.size, a.file.Path, ErrBadPage)
		}
		raw = []Extent{{o.Off, o.Len}}
	case PageExpert:
		if a.spec.Experts == nil {
			return nil, fmt.Errorf("genome: %s: %w", ref, ErrNoExperts)
		}
		var err error
		raw, err = a.spec.Experts(int(ref.Offset.Layer), int(ref.Offset.Expert))
		if err != nil {
			return nil, fmt.Errorf("genome: %s: %w", ref, err)
		}
		if len(raw) == 0 {
			return nil, fmt.Errorf("genome: %s: no bytes: %w", ref, ErrNoExperts)
		}
		for _, e := range raw {
			if e.Off < 0 || e.Len <= 0 || e.Off > a.size-e.Len {
				return nil, fmt.Errorf("genome: %s: extent [%d+%d] outside file of %d bytes: %w", ref, e.Off, e.Len, a.size, ErrBadPage)
			}
		}
	default:
		return nil, fmt.Errorf("genome: %s: %w", ref, ErrBadPage)
	}
	st := &pageState{ref: ref, art: a, file: a.file, raw: raw, ext: alignExtents(raw, a.size), region: regionOf(a, ref.Kind)}
	st.cost = extentBytes(st.ext)
	st.views = make([][]byte, len(raw))
	for i, e := range raw {
		st.views[i] = a.file.view(e)
	}
	m.mu.Lock()
	st.owner = m.ownerOf(ref)
	m.pages[ref] = st
	a.pages[st] = struct{}{}
	m.mu.Unlock()
	return st, nil
}

// lookup returns the state of ref for PageOut, Pin and Unpin.
// Caller holds m.opMu.
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
	case to == TierWarm && !st.profiled:
		lockedProfile.Add(st, 3)
		st.profiled = true
	case to != TierWarm && st.profiled:
		lockedProfile.Remove(st)
		st.profiled = false
	}
}

// region builds the Region for st. release lists the tiers whose other
// pages' bytes must not be released. Caller holds m.opMu.
func (m *Local) region(st *pageState, release ...TierRole) *Region {
	r := &Region{Ref: st.ref, File: st.art.file, Bytes: st.cost, Extents: st.ext, Release: st.ext}
	var keep []Extent
	for o := range st.art.pages {
		if o == st || o.tier == TierNone {
			continue
		}
		for _, t := range release {
			if o.tier == t && overlaps(o.ext, st.ext) {
				keep = append(keep, o.ext...)
			}
		}
	}
	r.Release = subtractExtents(st.ext, keep)
	return r
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

// errSkipTier is makeRoom's internal answer when admission rejects a
// demoted page: it should skip the tier and go further down.
var errSkipTier = errors.New("genome: admission rejected")

// makeRoom evicts pages of tier t, by t's policy, until need bytes fit.
// demoted says the incoming page comes from above, so t's admission rule
// applies. Caller holds m.opMu.
func (m *Local) makeRoom(ctx context.Context, t TierRole, need int64, incoming *pageState, demoted bool, recs []EvictionRecord) ([]EvictionRecord, error) {
	c := m.stores[t].Capacity()
	if c.Unlimited() || c.Fits(need) {
		return recs, nil
	}
	if need > c.Limit {
		return recs, fmt.Errorf("genome: %s is %d bytes, tier %s holds %d: %w", incoming.ref, need, t, c.Limit, ErrPageTooLarge)
	}
	m.mu.RLock()
	cands := make(map[*pageState]struct{}, len(m.inTier[t]))
	var pinned int64
	for st := range m.inTier[t] {
		if st.pins > 0 {
			pinned += st.cost
		} else if st != incoming {
			cands[st] = struct{}{}
		}
	}
	m.mu.RUnlock()
	free := c.Available()
	var victims []*pageState
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
		if recs, err = m.demote(ctx, v, m.below(t), EvictCapacity, m.policies[t], recs); err != nil {
			return recs, err
		}
	}
	return recs, nil
}

// demote moves st down to tier to (or further, when to's admission
// rejects it). Caller holds m.opMu.
func (m *Local) demote(ctx context.Context, st *pageState, to TierRole, reason EvictionReason, pol EvictionPolicy, recs []EvictionRecord) ([]EvictionRecord, error) {
	from := st.tier
	for to < TierCold {
		var err error
		recs, err = m.makeRoom(ctx, to, st.cost, st, reason == EvictCapacity, recs)
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
		return recs, err
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
// Caller holds m.opMu.
func (m *Local) promote(ctx context.Context, st *pageState, to TierRole, recs []EvictionRecord) ([]EvictionRecord, error) {
	recs, err := m.makeRoom(ctx, to, st.cost, st, false, recs)
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
	for _, r := range recs {
		m.emit(KeyEviction, r)
	}
}

// PageOut implements WorkingSetManager. A page never placed may be paged
// out too: PageOut(WholePage(a), TierCold) after llama.cpp's MAP_POPULATE
// load drops every byte of a that no Warm or Bench page holds, which is how
// a budget is enforced after load.
func (m *Local) PageOut(ctx context.Context, ref PageRef, to TierRole) error {
	if !to.Valid() || m.stores[to] == nil {
		return &UnconfiguredTierError{Role: to, Op: "PageOut"}
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	a, st, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if err := m.revalidate(a); err != nil {
		return err
	}
	if to == TierFrozen {
		return m.freeze(ctx, a, ref)
	}
	if st == nil { // frozen artifact
		return fmt.Errorf("genome: PageOut %s to %s: artifact is frozen: %w", ref, to, ErrBadPage)
	}
	if st.pins > 0 {
		return fmt.Errorf("genome: PageOut %s: %w", ref, ErrPinned)
	}
	if st.tier == to {
		return nil
	}
	if st.tier != TierNone && to.Above(st.tier) {
		return fmt.Errorf("genome: PageOut %s: tier %s is above %s; use PageIn: %w", ref, to, st.tier, ErrBadPage)
	}
	recs, err := m.demote(ctx, st, to, EvictRequest, PolicyNone, nil)
	m.publishEvictions(recs)
	return err
}

// Pin implements WorkingSetManager.
func (m *Local) Pin(ref PageRef) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	_, st, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if st == nil {
		return fmt.Errorf("genome: Pin %s: artifact is frozen: %w", ref, ErrBadPage)
	}
	m.mu.Lock()
	st.pins++
	m.mu.Unlock()
	return nil
}

// Unpin implements WorkingSetManager.
func (m *Local) Unpin(ref PageRef) error {
	m.opMu.Lock()
	defer m.opMu.Unlock()
	_, st, err := m.lookup(ref)
	if err != nil {
		return err
	}
	if st == nil || st.pins == 0 {
		return fmt.Errorf("genome: Unpin %s: %w", ref, ErrNotPinned)
	}
	m.mu.Lock()
	st.pins--
	m.mu.Unlock()
	return nil
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
			if recs, err = m.demote(ctx, st, TierCold, EvictRequest, PolicyNone, recs); err != nil {
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
	m.mu.Unlock()
	if err := a.file.evict([]Extent{{0, alignUp(a.size)}}); err != nil {
		return err
	}
	if a.thawed {
		if err := os.Remove(a.file.Path); err != nil {
			return fmt.Errorf("genome: freeze: %w", err)
		}
	}
	a.retired = append(a.retired, a.file)
	a.file = nil
	a.frozen = true
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
	a.file, a.thawed, a.frozen = f, true, false
	return nil
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
		for l := 0; l < a.spec.Layers; l++ {
			for e := 0; e < a.spec.ExpertCount; e++ {
				ex, err := a.spec.Experts(l, e)
				if errors.Is(err, ErrNoExperts) || (err == nil && len(ex) == 0) {
					break
				}
				if err != nil {
					return nil, fmt.Errorf("genome: pages of %s: layer %d expert %d: %w", id, l, e, err)
				}
				out = append(out, ExpertPage(id, l, e))
			}
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
		w.Pages = append(w.Pages, ResidentPage{Ref: st.ref, Tier: st.tier, Bytes: st.cost, Pinned: st.pins > 0, Owner: st.owner, Hits: st.hits.Load()})
	}
	for _, a := range m.artifacts {
		if a.frozen {
			w.Pages = append(w.Pages, ResidentPage{Ref: WholePage(a.id), Tier: TierFrozen, Bytes: a.size, Owner: m.ownerOf(WholePage(a.id))})
		}
	}
	w.Capacity = m.capacities()
	return w
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
		if err := m.revalidate(a); err != nil && first == nil {
			first = err
		}
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
