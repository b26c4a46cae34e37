package genome

import (
	"fmt"
	"sync/atomic"
)

// PolicySim replays page-ins through the genome's own placement and
// eviction code, with no file, mapping or store behind them: pages are
// numbers with a cost in bytes, and tiers are byte limits. It exists so
// that an offline cache simulator (genome/routing) can report the hit rate
// the genome itself would get on a recorded trace, next to LRU, ARC and
// Belady's optimum, instead of the hit rate of a reimplementation.
//
// What is shared with Local and what is mirrored: the pages are the
// manager's own pageState records, victims are chosen by the same
// pickVictim (exact LRU, or sampled LFU over Go's randomized map order)
// over the same access samples (lastAccess, hits), and demoted pages pass
// the same admission rule (admitDemoted) under the same per-tier policies
// (CanonicalPolicy). The walk that connects them — promote, makeRoom,
// demote, below — is a copy of Local's without the stores' syscalls, the
// locks, pins, permissions or events (and without makeRoom's copy of the
// tier's set); TestPolicySimMatchesLocal replays
// the same accesses through both and compares every page's tier after
// each one, so the two cannot drift apart unnoticed.
//
// A PolicySim is used by one goroutine at a time.
type PolicySim struct {
	pages    []*pageState // by page number; nil until first accessed
	inTier   [numTiers]map[*pageState]struct{}
	limit    [numTiers]int64 // 0: no limit
	used     [numTiers]int64
	present  [numTiers]bool
	policies [numTiers]EvictionPolicy
	target   TierRole
	clock    atomic.Int64
	cycle    *cycleState // the experts' cycle, for AccessExpert
}

// SimTier is one tier of a PolicySim: its role (Fast, Warm or Bench) and
// byte limit. A Limit of 0 means no limit, as in TierCapacity.
type SimTier struct {
	Role  TierRole
	Limit int64
}

// SimAccess is what one PolicySim access did.
type SimAccess struct {
	// From is the tier the page was in when it was asked for, as
	// PageFault.From reports it: TierNone on its first access, and for a
	// hit the tier that served it.
	From TierRole
	// Hit is true when the page was already in the page-in tier or above,
	// so that PageIn returned without a fault.
	Hit bool
	// Read is the tier the page's bytes were read from. A page being
	// promoted is never a victim of the room made for it (its old tier
	// counts its bytes as free, makeRoom's leaving), so this is From; a
	// page whose Read tier is not Resident cost a read from the file.
	Read TierRole
}

// NewPolicySim returns a simulator over the given tiers, each run by its
// CanonicalPolicy, above an unlimited Cold tier. pageIn is the tier a
// page-in promotes to, as Config.PageInTier; TierNone picks the first of
// Warm, Bench and Cold that is present, as NewLocal does.
func NewPolicySim(pageIn TierRole, tiers ...SimTier) (*PolicySim, error) {
	s := &PolicySim{}
	for _, t := range tiers {
		if t.Role < TierFast || t.Role > TierBench {
			return nil, fmt.Errorf("genome: NewPolicySim: tier %s (want fast, warm or bench)", t.Role)
		}
		if s.present[t.Role] {
			return nil, fmt.Errorf("genome: NewPolicySim: two tiers %s", t.Role)
		}
		if t.Limit < 0 {
			return nil, fmt.Errorf("genome: NewPolicySim: tier %s limit %d bytes", t.Role, t.Limit)
		}
		s.present[t.Role], s.limit[t.Role] = true, t.Limit
	}
	s.present[TierCold] = true
	for i := range s.inTier {
		s.inTier[i] = make(map[*pageState]struct{})
		s.policies[i] = CanonicalPolicy(TierRole(i))
	}
	s.target = pageIn
	if s.target == TierNone {
		for _, r := range []TierRole{TierWarm, TierBench, TierCold} {
			if s.present[r] {
				s.target = r
				break
			}
		}
	}
	if s.target > TierCold || !s.present[s.target] {
		return nil, &UnconfiguredTierError{Role: s.target, Op: "NewPolicySim page-in tier"}
	}
	return s, nil
}

// BudgetSim returns a simulator shaped as Budget(budget) shapes a manager:
// half the bytes (rounded down to OS pages) in a Warm tier, the rest in
// Bench, pages promoted to Warm. Unlike Budget it does not lower the Warm
// half to what RLIMIT_MEMLOCK allows here, so the result does not depend
// on the machine that replays a trace.
func BudgetSim(budget int64) (*PolicySim, error) { return BudgetSimFor(budget, 0) }

// BudgetSimFor is BudgetSim shaped as BudgetFor(budget, cycle): Warm gets
// WarmShare(budget, cycle), rounded down to OS pages.
func BudgetSimFor(budget, cycle int64) (*PolicySim, error) {
	if budget < int64(pageSize) {
		return nil, fmt.Errorf("genome: budget of %d bytes, OS page %d: %w", budget, pageSize, ErrBudgetTooSmall)
	}
	warm := alignDown(WarmShare(budget, cycle))
	var tiers []SimTier
	if bench := alignDown(budget - warm); bench > 0 {
		tiers = append(tiers, SimTier{Role: TierBench, Limit: bench})
	}
	if warm > 0 {
		tiers = append([]SimTier{{Role: TierWarm, Limit: warm}}, tiers...)
	}
	return NewPolicySim(TierNone, tiers...)
}

// PageInTier returns the tier an access promotes to.
func (s *PolicySim) PageInTier() TierRole { return s.target }

// Tier returns the tier page is in (TierNone if it was never accessed).
func (s *PolicySim) Tier(page int) TierRole {
	if page < 0 || page >= len(s.pages) || s.pages[page] == nil {
		return TierNone
	}
	return s.pages[page].tier
}

// Used returns the bytes the pages in tier r account for.
func (s *PolicySim) Used(r TierRole) int64 {
	if int(r) >= numTiers {
		return 0
	}
	return s.used[r]
}

// Access asks for page, of cost bytes, as PageIn does, and reports where
// it was found. A page keeps the cost of its first access. On an error
// (a page larger than a tier it must enter: ErrPageTooLarge) the page is
// left where it was, as PageIn leaves it.
func (s *PolicySim) Access(page int, cost int64) (SimAccess, error) {
	return s.access(page, -1, 0, cost)
}

// AccessExpert is Access for a page that is expert e of MoE layer layer
// of one model, as PageIn of an ExpertPage: the Warm tier's PolicyCycle
// learns the layers' cycle from such accesses. A page keeps the kind of
// its first access.
func (s *PolicySim) AccessExpert(page, layer, e int, cost int64) (SimAccess, error) {
	if layer < 0 || e < 0 {
		return SimAccess{}, fmt.Errorf("genome: PolicySim page %d: layer %d expert %d: %w", page, layer, e, ErrBadPage)
	}
	return s.access(page, layer, e, cost)
}

func (s *PolicySim) access(page, layer, e int, cost int64) (SimAccess, error) {
	if page < 0 {
		return SimAccess{}, fmt.Errorf("genome: PolicySim page %d: %w", page, ErrBadPage)
	}
	if page >= len(s.pages) {
		s.pages = append(s.pages, make([]*pageState, page+1-len(s.pages))...)
	}
	st := s.pages[page]
	if st == nil {
		if cost <= 0 {
			return SimAccess{}, fmt.Errorf("genome: PolicySim page %d of %d bytes: %w", page, cost, ErrBadPage)
		}
		st = &pageState{ref: RangePage(ArtifactID{}, int64(page), cost), cost: cost}
		if layer >= 0 {
			if s.cycle == nil {
				s.cycle = newCycleState()
			}
			st.ref = ExpertPage(ArtifactID{}, layer, e)
			st.cyc = s.cycle
		}
		s.pages[page] = st
	} else if cost != st.cost {
		return SimAccess{}, fmt.Errorf("genome: PolicySim page %d of %d bytes, first accessed with %d: %w", page, cost, st.cost, ErrBadPage)
	}
	// PageIn's fast path.
	if st.tier >= TierFast && st.tier <= s.target {
		s.touch(st)
		return SimAccess{From: st.tier, Hit: true, Read: st.tier}, nil
	}
	a := SimAccess{From: st.tier}
	if st.cyc != nil {
		st.cyc.enter(int(st.ref.Offset.Layer))
	}
	read, err := s.promote(st, s.target)
	a.Read = read
	if err != nil {
		return a, err
	}
	s.touch(st)
	return a, nil
}

// touch records an access sample, as PageIn does after a hit or a fault.
func (s *PolicySim) touch(st *pageState) { st.touch(&s.clock) }

// promote is Local.promote: make room by to's policy, then move st up. It
// returns the tier st's bytes came from.
func (s *PolicySim) promote(st *pageState, to TierRole) (TierRole, error) {
	if err := s.makeRoom(to, st.cost, st, st, false); err != nil {
		return st.tier, err
	}
	from := st.tier
	s.setTier(st, to)
	return from, nil
}

// makeRoom is Local.makeRoom: evict pages of tier t by t's policy until
// need bytes fit, applying t's admission rule when incoming was demoted
// from above; the bytes of leaving, the page a promotion is taking out of
// t, count as free, and it is no candidate.
func (s *PolicySim) makeRoom(t TierRole, need int64, incoming, leaving *pageState, demoted bool) error {
	limit := s.limit[t]
	if limit <= 0 {
		return nil
	}
	if need > limit {
		name := fmt.Sprintf("page %d", incoming.ref.Offset.Off)
		if incoming.ref.Kind == PageExpert {
			name = fmt.Sprintf("expert [%d,%d]", incoming.ref.Offset.Layer, incoming.ref.Offset.Expert)
		}
		return fmt.Errorf("genome: %s is %d bytes, tier %s holds %d: %w", name, need, t, limit, ErrPageTooLarge)
	}
	free := limit - s.used[t] // may be negative, as in Local.makeRoom
	var out *pageState        // leaving, when it is leaving t
	if leaving != nil && leaving.tier == t {
		out = leaving
		free += out.cost
	}
	if need <= free {
		return nil
	}
	// Local copies the tier's set into cands; here victims are taken out
	// of the set itself while they are picked and put back before they
	// move, which picks alike (Go randomizes every map walk) without a
	// copy of the tier per miss.
	cands := s.inTier[t]
	for _, st := range [2]*pageState{incoming, out} {
		if _, in := cands[st]; in {
			delete(cands, st)
			defer func() { cands[st] = struct{}{} }()
		}
	}
	var victims []*pageState
	for free < need {
		v := pickVictim(s.policies[t], cands)
		if v == nil {
			for _, v := range victims {
				cands[v] = struct{}{}
			}
			return &NoEvictionCandidateError{Role: t, Need: need, Free: free, Incoming: incoming.ref}
		}
		delete(cands, v)
		victims = append(victims, v)
		free += v.cost
	}
	for _, v := range victims {
		cands[v] = struct{}{}
	}
	if demoted && !admitDemoted(s.policies[t], incoming, victims) {
		return errSkipTier
	}
	for _, v := range victims {
		if err := s.demote(v, s.below(t), leaving); err != nil {
			return err
		}
	}
	return nil
}

// demote is Local.demote for capacity evictions: st goes down to tier to,
// or further when to's admission rejects it.
func (s *PolicySim) demote(st *pageState, to TierRole, leaving *pageState) error {
	for to < TierCold {
		err := s.makeRoom(to, st.cost, st, leaving, true)
		if err == errSkipTier {
			to = s.below(to)
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	s.setTier(st, to)
	return nil
}

// below is Local.below: the next present tier under t, Cold at the latest.
func (s *PolicySim) below(t TierRole) TierRole {
	for r := t + 1; r <= TierCold; r++ {
		if s.present[r] {
			return r
		}
	}
	return TierCold
}

// setTier moves st to tier to, with the byte accounting the stores keep.
func (s *PolicySim) setTier(st *pageState, to TierRole) {
	if st.tier != TierNone {
		delete(s.inTier[st.tier], st)
		s.used[st.tier] -= st.cost
	}
	st.tier = to
	s.inTier[to][st] = struct{}{}
	s.used[to] += st.cost
}
