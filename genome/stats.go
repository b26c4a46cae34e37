package genome

import "runtime/pprof"

// Stats are the manager's counters since it was created.
type Stats struct {
	Hits uint64
	// Faults counts page faults by the tier the page was found in;
	// Faults[TierNone] counts true cold misses.
	Faults        [numTiers]uint64
	BytesPagedIn  uint64 // bytes promoted by faults
	BytesPagedOut uint64 // bytes demoted by evictions and page-outs
	Evictions     uint64
	Denials       uint64
	LockedBytes   int64  // bytes held in the Warm tier (mlock'd)
	DroppedEvents uint64 // events not queued because the queue was full (never denials)
	PublishErrors uint64 // events the publisher refused
	Tiers         []TierCapacity
	// UnpublishedDenials counts denials that reached no publisher: none
	// was set, or it refused them. Denials are never queued or dropped.
	UnpublishedDenials uint64
	// UnrecordedDenials counts denials the denial recorder refused.
	UnrecordedDenials uint64
}

// TotalFaults returns the sum of Faults.
func (s Stats) TotalFaults() uint64 {
	var n uint64
	for _, f := range s.Faults {
		n += f
	}
	return n
}

// Stats implements WorkingSetManager.
func (m *Local) Stats() Stats {
	s := Stats{
		Hits:          m.ctr.hits.Load(),
		BytesPagedIn:  m.ctr.bytesIn.Load(),
		BytesPagedOut: m.ctr.bytesOut.Load(),
		Evictions:     m.ctr.evictions.Load(),
		Denials:       m.ctr.denials.Load(),
		DroppedEvents: m.ctr.dropped.Load(),
		PublishErrors: m.ctr.publishErrs.Load(),
		Tiers:         m.capacities(),

		UnpublishedDenials: m.ctr.unpublishedDenials.Load(),
		UnrecordedDenials:  m.ctr.unrecordedDenials.Load(),
	}
	for i := range s.Faults {
		s.Faults[i] = m.ctr.faults[i].Load()
	}
	if w := m.stores[TierWarm]; w != nil {
		s.LockedBytes = w.Capacity().Used
	}
	return s
}

// Profile names, visible at /debug/pprof/<name> once net/http/pprof is
// imported.
const (
	// LockedProfileName lists one entry per page held in the Warm tier
	// (mlock'd: pinned in RAM), with the stack that locked it.
	LockedProfileName = "strata/genome.locked"
	// FaultProfileName lists the most recent page faults of each manager
	// (up to faultRingLen), with the stack of the PageIn that faulted.
	FaultProfileName = "strata/genome.faults"
)

var (
	lockedProfile = pprof.NewProfile(LockedProfileName)
	faultProfile  = pprof.NewProfile(FaultProfileName)
)

// faultRingLen bounds how many faults per manager the fault profile keeps.
const faultRingLen = 256

type faultEntry struct{ f PageFault }

// recordFault adds f to the fault profile, in place of the oldest entry
// of this manager when the ring is full (the entry is reused: only pprof's
// stack capture allocates). The stack starts at the caller of PageIn or
// PageInTo (recordFault, pageIn, pageInTo, PageIn[To]). Caller holds
// m.opMu.
func (m *Local) recordFault(f *PageFault) {
	if m.noProfiles {
		return
	}
	e := m.faultRing[m.faultNext]
	if e != nil {
		faultProfile.Remove(e)
	} else {
		e = &faultEntry{}
		m.faultRing[m.faultNext] = e
	}
	e.f = *f
	m.faultNext = (m.faultNext + 1) % faultRingLen
	faultProfile.Add(e, 4)
}
