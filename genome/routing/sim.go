package routing

import (
	"fmt"
	"math"
	"strings"

	"github.com/strata-llm/strata/genome"
)

// Policy is a cache replacement policy the simulator replays a trace
// through.
type Policy uint8

// The policies.
const (
	// LRU evicts the least recently used expert.
	LRU Policy = iota + 1
	// LFU evicts the least frequently used expert, counting every access
	// since the start of the trace, evicted or not ("perfect" LFU), the
	// least recently used first among equals.
	LFU
	// ARC is Megiddo and Modha's adaptive replacement cache, in bytes
	// where experts differ in size (as ZFS's ARC is).
	ARC
	// Genome is the genome's own policy as engine.NewBudget configures
	// it: the capacity split by genome.WarmShare (all of it Warm when the
	// trace gives the cycle of a token's experts), Warm run by
	// PolicyCycle and any Bench by sampled LFU with frequency-gated
	// admission, replayed by genome.PolicySim on the genome's own
	// eviction code. An access is a hit when the expert is in either tier
	// (no read from the file).
	Genome
	// Expected evicts the expert whose next use is expected farthest
	// away: its layer's distance in the cycle of layers, plus the cycle
	// times the inverse of the probability it is used at a visit, that
	// being the larger of its frequency over the whole trace (known in
	// advance) and the reuse rate of experts last used as many visits ago
	// (learned as it goes). It sees the routing's distribution but not its
	// draws: not a bound, but about what a policy can reach that does not
	// predict the routing, where Belady sees every draw to come.
	Expected
	// Belady is the offline optimum MIN: evict the resident expert whose
	// next use is farthest away. With experts of one size it is the most
	// hits any policy that must hold the expert it serves can get; with
	// mixed sizes it is that rule, no longer a bound.
	Belady
)

// Policies lists every policy in the order the simulator reports them.
var Policies = []Policy{LRU, LFU, ARC, Genome, Expected, Belady}

var policyNames = [...]string{LRU: "lru", LFU: "lfu", ARC: "arc", Genome: "genome", Expected: "expected", Belady: "belady"}

// String returns the policy's lower-case name.
func (p Policy) String() string {
	if int(p) < len(policyNames) && policyNames[p] != "" {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", uint8(p))
}

// ParsePolicy parses a policy name (any case).
func ParsePolicy(s string) (Policy, error) {
	for _, p := range Policies {
		if strings.EqualFold(s, p.String()) {
			return p, nil
		}
	}
	return 0, fmt.Errorf("%w %q (want lru, lfu, arc, genome, expected or belady)", ErrPolicy, s)
}

// Capacity is how much a simulated cache holds, over all layers
// together: Slots experts, or a budget of Bytes (experts then cost
// their layer's Layer.ExpertBytes). Exactly one is used; Bytes wins when
// both are set.
type Capacity struct {
	Slots int
	Bytes int64
}

// String formats c as "64 slots" or "1.5 GiB".
func (c Capacity) String() string {
	if c.Bytes > 0 {
		return FormatBytes(c.Bytes)
	}
	return fmt.Sprintf("%d slots", c.Slots)
}

// FormatBytes formats n in binary units ("512 MiB", "1.5 GiB").
func FormatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(units)-1 {
		v, u = v/1024, u+1
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return strings.TrimSuffix(strings.TrimSuffix(fmt.Sprintf("%.2f", v), "0"), ".0") + " " + units[u]
}

// Result is the outcome of replaying a trace through one policy at one
// capacity.
type Result struct {
	Policy   Policy
	Capacity Capacity
	// Slots is the number of experts the capacity holds: Capacity.Slots,
	// or for a byte budget over experts of one size the budget divided by
	// that size (0 when sizes differ).
	Slots int
	// Accesses are the page-ins the trace asks for: each token, each MoE
	// layer, each distinct expert of its routing.
	Accesses int64
	Hits     int64
	Misses   int64
	// Err is set when the policy cannot run at this capacity: the genome
	// refuses an expert larger than one of its tiers (genome.ErrPageTooLarge),
	// where the real engine would fail the decode. The counts are then
	// those up to the refusal.
	Err error
}

// HitRate returns Hits/Accesses (0 for no accesses).
func (r Result) HitRate() float64 {
	if r.Accesses == 0 {
		return 0
	}
	return float64(r.Hits) / float64(r.Accesses)
}

// Workload is a trace turned into the access stream a cache sees: pages
// numbered layer × Experts + expert, in decode order (token by token,
// layer by layer, each distinct expert of a routing once, in routing
// order). Build it once and Run it at many capacities; a Workload is
// read-only once built, so Runs may go on concurrently.
type Workload struct {
	keys    []int32   // the access stream
	cost    byteCosts // bytes of each page (0: unknown)
	sizes   bool      // every page has a known size
	uniform int64     // the one size of every page, 0 when they differ
	pages   int
	next    []int32 // index of the next access to the same page, or noNext
	tok     []int32 // the token of each access
	layers  int     // MoE layers
	experts int     // experts per layer
	tokens  int
	used    int   // experts a token routes to per layer
	cycle   int64 // bytes of one token's experts over all layers (0: sizes unknown)
}

const noNext = math.MaxInt32

// NewWorkload builds the access stream of t.
func NewWorkload(t *Trace) *Workload {
	w := &Workload{pages: len(t.Layers) * t.Experts, sizes: true, layers: len(t.Layers), experts: t.Experts, tokens: t.Tokens(), used: t.Used}
	w.cost = make(byteCosts, w.pages)
	for li, l := range t.Layers {
		for e := range t.Experts {
			w.cost[li*t.Experts+e] = l.ExpertBytes
		}
		if l.ExpertBytes <= 0 {
			w.sizes = false
		}
	}
	if w.sizes {
		w.cycle = t.CycleBytes()
		w.uniform = t.Layers[0].ExpertBytes
		for _, l := range t.Layers {
			if l.ExpertBytes != w.uniform {
				w.uniform = 0
			}
		}
	}
	w.keys = make([]int32, 0, t.Tokens()*t.RowLen())
	w.tok = make([]int32, 0, t.Tokens()*t.RowLen())
	for tok := range t.Tokens() {
		for li := range t.Layers {
			r := t.Routing(tok, li)
			for i, e := range r {
				if !containsBefore(r, i, e) {
					w.keys = append(w.keys, int32(li*t.Experts+int(e)))
					w.tok = append(w.tok, int32(tok))
				}
			}
		}
	}
	w.next = make([]int32, len(w.keys))
	last := make([]int32, w.pages)
	for i := range last {
		last[i] = noNext
	}
	for i := len(w.keys) - 1; i >= 0; i-- {
		k := w.keys[i]
		w.next[i], last[k] = last[k], int32(i)
	}
	return w
}

func containsBefore(r []uint16, i int, e uint16) bool {
	for _, x := range r[:i] {
		if x == e {
			return true
		}
	}
	return false
}

// Accesses returns the length of the access stream.
func (w *Workload) Accesses() int { return len(w.keys) }

// Pages returns the number of experts over all MoE layers.
func (w *Workload) Pages() int { return w.pages }

// Distinct returns the number of experts accessed at least once: the
// misses any policy takes, however large its capacity.
func (w *Workload) Distinct() int {
	n := 0
	seen := make([]bool, w.pages)
	for _, k := range w.keys {
		if !seen[k] {
			seen[k] = true
			n++
		}
	}
	return n
}

// cache is one simulated policy over pages 0..n-1.
type cache interface {
	// access records the i'th access of the stream, to page p, and
	// reports whether it hit.
	access(p int32, i int) (bool, error)
}

// Run replays w through policy p at capacity c.
func (w *Workload) Run(p Policy, c Capacity) (Result, error) {
	if c.Slots < 0 || c.Bytes < 0 {
		return Result{}, fmt.Errorf("%w: %d slots, %d bytes", ErrCapacity, c.Slots, c.Bytes)
	}
	if c.Bytes > 0 {
		c.Slots = 0
		if !w.sizes {
			return Result{}, ErrNoSizes
		}
	}
	res := Result{Policy: p, Capacity: c, Accesses: int64(len(w.keys)), Slots: c.Slots}
	// Policies other than the genome's work in slots when every expert has
	// one size: the same cache, and MIN stays exact.
	var cost costs = unitCosts
	limit := int64(c.Slots)
	if c.Bytes > 0 {
		cost, limit = w.cost, c.Bytes
		if w.uniform > 0 {
			res.Slots = int(c.Bytes / w.uniform)
			cost, limit = unitCosts, int64(res.Slots)
		}
	}
	var (
		cc  cache
		err error
	)
	switch p {
	case LRU:
		cc = newLRU(w.pages, cost, limit)
	case LFU:
		cc = newLFU(w.pages, cost, limit)
	case ARC:
		cc = newARC(w.pages, cost, limit)
	case Expected:
		cc = newExpected(w, cost, limit)
	case Belady:
		cc = newMIN(w.pages, cost, limit, w.next)
	case Genome:
		if c.Bytes > 0 {
			cc, err = newGenome(w.cost, c.Bytes, w.cycle, w.experts)
		} else {
			cc, err = newGenome(unitCosts, int64(c.Slots), int64(w.layers*w.used), w.experts)
		}
		if err != nil {
			res.Err = err
			res.Misses = res.Accesses
			return res, nil
		}
	default:
		return Result{}, fmt.Errorf("%w: %v", ErrPolicy, p)
	}
	if limit == 0 && p != Genome {
		res.Misses = res.Accesses
		return res, nil
	}
	for i, k := range w.keys {
		hit, err := cc.access(k, i)
		if err != nil {
			res.Err = err
			res.Misses = res.Accesses - res.Hits
			return res, nil
		}
		if hit {
			res.Hits++
		}
	}
	res.Misses = res.Accesses - res.Hits
	return res, nil
}

// Simulate replays t through each policy at each capacity, capacities
// in the outer loop.
func Simulate(t *Trace, caps []Capacity, policies []Policy) ([]Result, error) {
	w := NewWorkload(t)
	var out []Result
	for _, c := range caps {
		for _, p := range policies {
			r, err := w.Run(p, c)
			if err != nil {
				return nil, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// costs gives each page's cost; unitCosts is 1 for every page.
type costs interface{ of(p int32) int64 }

type unitCost struct{}

func (unitCost) of(int32) int64 { return 1 }

var unitCosts costs = unitCost{}

type byteCosts []int64

func (b byteCosts) of(p int32) int64 { return b[p] }

// genomeCache replays through the genome's own code (genome.PolicySim).
type genomeCache struct {
	sim     *genome.PolicySim
	cost    costs
	experts int // experts per layer: page p is expert p%experts of layer p/experts
}

// newGenome shapes a PolicySim as engine.NewBudget shapes the genome,
// whose Warm tier gets genome.WarmShare of the budget for a cycle of one
// token's experts: for a byte budget exactly BudgetSimFor; for slots the
// same rule in slots (cycle is then the slots of a token's experts),
// one unit per expert. A capacity of 0 gives a cache that never hits.
func newGenome(cost costs, limit, cycle int64, experts int) (cache, error) {
	if limit == 0 {
		return missAll{}, nil
	}
	var (
		sim *genome.PolicySim
		err error
	)
	if _, bytes := cost.(byteCosts); bytes {
		sim, err = genome.BudgetSimFor(limit, cycle)
	} else {
		warm := genome.WarmShare(limit, cycle)
		var tiers []genome.SimTier
		if limit > warm {
			tiers = append(tiers, genome.SimTier{Role: genome.TierBench, Limit: limit - warm})
		}
		if warm > 0 {
			tiers = append([]genome.SimTier{{Role: genome.TierWarm, Limit: warm}}, tiers...)
		}
		sim, err = genome.NewPolicySim(genome.TierNone, tiers...)
	}
	if err != nil {
		return nil, err
	}
	return &genomeCache{sim: sim, cost: cost, experts: experts}, nil
}

func (g *genomeCache) access(p int32, _ int) (bool, error) {
	a, err := g.sim.AccessExpert(int(p), int(p)/g.experts, int(p)%g.experts, g.cost.of(p))
	if err != nil {
		return false, err
	}
	return a.Read.Resident(), nil
}

type missAll struct{}

func (missAll) access(int32, int) (bool, error) { return false, nil }
