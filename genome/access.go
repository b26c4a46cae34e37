package genome

import "fmt"

// GenomeRegion is a kind of memory the genome guards, the row of an access
// table.
type GenomeRegion uint8

// The regions.
const (
	RegionWeights  GenomeRegion = iota // base model weights
	RegionExperts                      // MoE expert pages
	RegionAdapters                     // LoRA adapters, usually owned by one persona
	RegionArchive                      // the Frozen archive
	numRegions
)

// String returns the lower-case name of the region.
func (r GenomeRegion) String() string {
	switch r {
	case RegionWeights:
		return "weights"
	case RegionExperts:
		return "experts"
	case RegionAdapters:
		return "adapters"
	case RegionArchive:
		return "archive"
	}
	return fmt.Sprintf("GenomeRegion(%d)", uint8(r))
}

// Op is a set of operations on a region, the columns of an access table.
type Op uint8

// The operations.
const (
	OpRead  Op = 1 << iota // read the bytes of a page
	OpPage                 // page it in (move it up a tier)
	OpEvict                // page it out (move it down)
	OpWrite                // change its bytes or freeze it
	OpAll   = OpRead | OpPage | OpEvict | OpWrite
)

// String returns the operations joined with '|'.
func (o Op) String() string {
	if o == 0 {
		return "none"
	}
	s := ""
	for i, n := range [...]string{"read", "page", "evict", "write"} {
		if o&(1<<i) != 0 {
			if s != "" {
				s += "|"
			}
			s += n
		}
	}
	return s
}

// AccessTable says which operations a persona may do in each region.
type AccessTable [numRegions]Op

// DefaultAccess is the table a persona gets when registered without one:
// it may read and page weights, experts and adapters (pages with an owner
// stay the owner's alone), and read the archive; evicting and writing are
// the engine's business.
var DefaultAccess = AccessTable{
	RegionWeights:  OpRead | OpPage,
	RegionExperts:  OpRead | OpPage,
	RegionAdapters: OpRead | OpPage,
	RegionArchive:  OpRead,
}

// FullAccess allows everything everywhere; it is for the engine's own
// persona. Ownership still holds: bytes another persona owns are refused
// to it as to anyone.
var FullAccess = AccessTable{OpAll, OpAll, OpAll, OpAll}

// Allows reports whether the table allows every operation in op on r.
func (t *AccessTable) Allows(r GenomeRegion, op Op) bool {
	return r < numRegions && t[r]&op == op
}

// allowsAll reports whether the table allows every operation in op in
// every region of s; if not, it returns the first region that falls short.
func (t *AccessTable) allowsAll(s regionSet, op Op) (GenomeRegion, bool) {
	for r := range numRegions {
		if s&regionBit(r) != 0 && t[r]&op != op {
			return r, false
		}
	}
	return 0, true
}

// regionSet is a set of regions, one bit each: the regions a page's bytes
// lie in, which may be several (a Whole model page covers weights and
// experts).
type regionSet uint8

// regionBit returns the set holding r alone.
func regionBit(r GenomeRegion) regionSet { return 1 << r }

// first returns the lowest region in s (RegionWeights for the empty set).
func (s regionSet) first() GenomeRegion {
	for r := range numRegions {
		if s&regionBit(r) != 0 {
			return r
		}
	}
	return 0
}

// Persona is a tenant registered with the manager.
type Persona struct {
	ID     PersonaID
	Name   string
	Access *AccessTable // nil means DefaultAccess
}
