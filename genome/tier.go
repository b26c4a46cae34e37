package genome

import "fmt"

// TierRole is one of the five memory tiers a page can live in, ordered from
// the fastest (Fast) to the slowest (Frozen). A smaller value is a higher
// tier. The zero value, TierNone, is "in no tier": a page the manager has
// never placed, whose first page-in is a true cold miss.
type TierRole uint8

// The tiers, top-down. See DESIGN.md "Tiers" and doc.go.
const (
	TierNone   TierRole = iota // not placed in any tier
	TierFast                   // device memory (GPU backend buffer)
	TierWarm                   // host RAM, mlock'd range of a mapped file
	TierBench                  // page cache, populated, reclaimable
	TierCold                   // on disk, evicted from the page cache
	TierFrozen                 // compressed archive, thawed to a Cold file
)

// numTiers sizes arrays indexed by TierRole (TierNone included).
const numTiers = int(TierFrozen) + 1

// Tiers lists the five roles top-down.
var Tiers = [...]TierRole{TierFast, TierWarm, TierBench, TierCold, TierFrozen}

var tierNames = [numTiers]string{"none", "fast", "warm", "bench", "cold", "frozen"}

// String returns the lower-case name of the role.
func (r TierRole) String() string {
	if int(r) < len(tierNames) {
		return tierNames[r]
	}
	return fmt.Sprintf("TierRole(%d)", uint8(r))
}

// Valid reports whether r is one of the five tiers (TierNone is not).
func (r TierRole) Valid() bool { return r >= TierFast && r <= TierFrozen }

// Above reports whether r is a strictly higher (faster) tier than o.
// TierNone is below every tier.
func (r TierRole) Above(o TierRole) bool {
	if r == TierNone {
		return false
	}
	return o == TierNone || r < o
}

// Resident reports whether bytes in r are in host or device memory
// (Fast, Warm, Bench), as opposed to on disk.
func (r TierRole) Resident() bool { return r >= TierFast && r <= TierBench }

// PresentOnUMA reports whether the tier exists as separate memory on a
// unified-memory machine (Apple silicon). There Fast and Warm are the same
// physical memory: a Warm page is already visible to the GPU, so Fast is not
// present as a tier of its own and pages are promoted only to Warm.
func (r TierRole) PresentOnUMA() bool { return r.Valid() && r != TierFast }

// TierCapacity is a byte limit and the bytes used against it. A Limit of
// zero means unlimited (Cold on a disk the manager does not meter).
type TierCapacity struct {
	Role  TierRole
	Limit int64
	Used  int64
}

// Unlimited reports whether the tier has no byte limit.
func (c TierCapacity) Unlimited() bool { return c.Limit <= 0 }

// Available returns the bytes that still fit. It saturates at zero when the
// tier is over its limit, and is the maximum int64 when there is no limit.
func (c TierCapacity) Available() int64 {
	if c.Unlimited() {
		return maxInt64
	}
	if c.Used >= c.Limit {
		return 0
	}
	return c.Limit - c.Used
}

// Utilization returns Used/Limit in [0, +inf); it is 0 when the tier has no
// limit, so callers never divide by zero.
func (c TierCapacity) Utilization() float64 {
	if c.Unlimited() || c.Used <= 0 {
		return 0
	}
	return float64(c.Used) / float64(c.Limit)
}

// Fits reports whether n more bytes fit without eviction.
func (c TierCapacity) Fits(n int64) bool { return n <= c.Available() }

const maxInt64 = int64(^uint64(0) >> 1)
