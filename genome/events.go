package genome

import "time"

// Canonical bus keys (DESIGN.md "Bus"). They equal bus.KeyPageFault,
// bus.KeyEviction and bus.KeyAccessDenied; bus_test.go checks that.
const (
	KeyPageFault    = "genome/working_set.page_fault"
	KeyEviction     = "genome/working_set.eviction"
	KeyAccessDenied = "genome/working_set.access_denied"
)

// PageFault is published when PageIn found the page below its target tier
// and moved it up. From is TierNone for a true cold miss: the first touch of
// a page the manager had never placed.
type PageFault struct {
	Persona PersonaID
	Page    PageRef
	From    TierRole
	To      TierRole
	Bytes   int64
	Latency time.Duration // measured wall time of the move, syscalls included
}

// ColdMiss reports whether the fault found the page in no tier.
func (f PageFault) ColdMiss() bool { return f.From == TierNone }

// EvictionReason says why a page moved down.
type EvictionReason uint8

// The eviction reasons.
const (
	EvictCapacity EvictionReason = iota + 1 // a tier was full; its policy picked the page
	EvictRequest                            // PageOut asked for it
)

// String returns the lower-case name of the reason.
func (r EvictionReason) String() string {
	switch r {
	case EvictCapacity:
		return "capacity"
	case EvictRequest:
		return "request"
	}
	return "unknown"
}

// EvictionRecord is published when a page moves down a tier.
type EvictionRecord struct {
	Page   PageRef
	From   TierRole
	To     TierRole
	Bytes  int64
	Reason EvictionReason
	Policy EvictionPolicy // the policy that chose the victim; PolicyNone for a request
	// StillResident is what mincore reported as resident of the page's
	// bytes right after a move to Cold: zero when the kernel really dropped
	// them, more when another mapping or a Warm/Bench page shares them.
	StillResident int64
}

// AccessDenied is published when an actor touched a page or region it has
// no right to.
type AccessDenied struct {
	Actor     PersonaID
	ActorName string    // the name the actor was registered with, if any
	Owner     PersonaID // zero when the denial is by region, not ownership
	OwnerName string
	Page      PageRef
	Region    GenomeRegion // the region the actor's rights fell short in; for a denial by owner, the page's first region
	Op        Op           // the operations the request needed there
	Reason    string
}
