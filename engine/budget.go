package engine

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/genome/routing"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// Budget runs a loaded MoE model's experts within a byte budget: a genome
// over the model file, attached to llama.cpp's mapping, with every expert
// evicted to Cold and an ExpertPager to page them back in as the router
// picks them. The dense weights that llama.cpp reads from the same
// mapping (not those it copied into repacked layouts or onto a GPU) are
// locked in the Warm tier beside the budget, pinned (see Pinned).
type Budget struct {
	Genome *genome.Local
	Pager  *ExpertPager
	// Prefetch reads each layer's predicted experts one layer ahead; nil
	// unless BudgetOptions.Prefetch. Its Stats give the prediction's
	// recall.
	Prefetch *Prefetcher
	id       genome.ArtifactID
	unhook   func() // removes the model's OnClose hook
	bytes    int64  // the budget
	asked    int64  // the budget asked for: more than bytes when that did not fit the memory limit
	dense    int64  // the weights every token reads from the file mapping, which the genome does not page
	pinned   int64  // bytes of them pinned in Warm
}

// BudgetOptions are NewBudgetWith's choices beyond the byte budget. The
// zero value is NewBudget's behaviour.
type BudgetOptions struct {
	// Prefetch predicts each MoE layer's experts from the layer before
	// and reads those not resident into the page cache off the decoding
	// goroutine, so that the layer's page-in finds them cached (see
	// Prefetcher).
	Prefetch bool
	// PrefetchReaders is the size of the prefetch's reader pool; 0 means
	// DefaultPrefetchReaders.
	PrefetchReaders int
	// NoProfiles keeps the budget's pages and faults out of the genome's
	// pprof profiles (genome.Config.NoProfiles), so that paging allocates
	// nothing on the decoding goroutine.
	NoProfiles bool
}

// Artifact is the model file's ID in b.Genome.
func (b *Budget) Artifact() genome.ArtifactID { return b.id }

// NewBudget sets up expert paging for m within bytes (genome.BudgetFor
// with one token's experts as the cycle: all of it in the Warm tier). Load m with PagedExperts(params),
// or llama.cpp may hold repacked copies of the experts that no paging
// reaches.
// Pass b.Pager.Observer() in the llama.ContextParams of every context of m,
// and Close b before closing m.
func NewBudget(ctx context.Context, m *llama.Model, bytes int64) (*Budget, error) {
	return NewBudgetWith(ctx, m, bytes, BudgetOptions{})
}

// NewBudgetWith is NewBudget with options (prefetch, profiles).
func NewBudgetWith(ctx context.Context, m *llama.Model, bytes int64, opt BudgetOptions) (*Budget, error) {
	if m.ExpertCount() == 0 {
		return nil, fmt.Errorf("engine: budget: %s has no experts to page", m.Path())
	}
	if bytes <= 0 {
		return nil, fmt.Errorf("engine: budget: %d bytes", bytes)
	}
	// A decode step pages one token's experts in turn, layer after layer:
	// with such a cycle the Warm tier, whose policy follows it, gets the
	// whole budget (genome.WarmShare). The file is parsed once, for that
	// and for the genome's registration below.
	f, err := gguf.Open(m.Path())
	if err != nil {
		return nil, fmt.Errorf("engine: budget: %w", err)
	}
	var cycle int64 // unknown: half and half
	var least int64 // one layer's routed experts at the largest expert size: the least a budget can page
	if h, err := routing.HeaderFromGGUF(f); err == nil {
		cycle = h.CycleBytes()
		for _, l := range h.Layers {
			least = max(least, l.ExpertBytes*int64(max(h.Used, 1)))
		}
	}
	if bytes < least {
		return nil, fmt.Errorf("engine: budget of %s is less than one layer's routed experts (%s): give at least that", routing.FormatBytes(bytes), routing.FormatBytes(least))
	}
	// A budget that leaves the dense weights no room (see MemoryCheck)
	// only makes the kernel reclaim weights that every token reads: lower
	// it to what fits, and when nothing fits lock nothing, so that the
	// kernel reclaims the budget's Bench pages first.
	//
	// The dense weights read from the file mapping are locked (pinned in
	// Warm, beside the budget): they count against the memory limit
	// anyway, and unlocked they are what the kernel reclaims when the
	// experts' page-ins press on it. Mapped with MADV_RANDOM (genome
	// AttachMappings), each such fault then reads one page: in a 2 GiB
	// cgroup bench-moe's decode took 54,000 major faults in 66 tokens,
	// 40,000 of them in the output head. Only the dense weights in the
	// mapping count: a repacked copy is anonymous memory, which
	// memoryNow counts, and a GPU's is not here.
	pins := mappedDense(f, m.Tensors())
	dense, asked := pageBytes(runs(pins)), bytes
	lockable, pin := int64(-1), dense
	if mem, ok := memoryNow(); ok {
		switch fit := mem.fit(dense); {
		case fit >= max(least, int64(os.Getpagesize())):
			bytes = min(bytes, fit)
		default:
			lockable, pins, pin = 0, nil, 0
		}
	}
	tiers, pinned, err := genome.BudgetTiers(genome.BudgetSpec{Budget: bytes, Cycle: cycle, MaxLocked: lockable, Pinned: pin})
	if err != nil {
		return nil, fmt.Errorf("engine: budget: %w", err)
	}
	if pinned == 0 {
		pins = nil // RLIMIT_MEMLOCK cannot hold them
	}
	gm, err := genome.NewLocal(genome.Config{Tiers: tiers, NoProfiles: opt.NoProfiles})
	if err != nil {
		return nil, err
	}
	b := &Budget{Genome: gm, bytes: bytes, asked: asked, dense: dense}
	fail := func(err error) (*Budget, error) {
		if b.unhook != nil {
			b.unhook()
		}
		gm.Close()
		return nil, fmt.Errorf("engine: budget: %w", err)
	}
	if b.id, err = gm.RegisterArtifact(genome.GGUFSpec(f)); err != nil {
		return fail(err)
	}
	// The model's Close detaches before llama.cpp unmaps (below), so the
	// genome need not check the mapping on every fault.
	if _, err := gm.AttachMappingsWith(b.id, genome.AttachOptions{DetachedBeforeUnmap: true}); err != nil {
		return fail(fmt.Errorf("%w (was the model loaded with mmap?)", err))
	}
	// The model's Close detaches the genome before llama.cpp unmaps the
	// file, whatever the order the caller closes in: DetachMappings takes
	// the genome's lock, so it waits for a paging operation in flight, and
	// none can act on the range once llama.cpp has released it.
	b.unhook = m.OnClose(func() { gm.DetachMappings(b.id) })
	// Inference reads and pages experts; evicting them is the engine's own
	// business, done under a persona allowed to.
	who, self := genome.NewPersonaID(), genome.NewPersonaID()
	full := genome.FullAccess
	for _, p := range []genome.Persona{{ID: who, Name: "inference"}, {ID: self, Name: "engine", Access: &full}} {
		if err := gm.RegisterPersona(p); err != nil {
			return fail(err)
		}
	}
	if b.pinned, err = b.pin(ctx, self, pins); err != nil {
		return fail(err)
	}
	experts, err := gm.Pages(b.id, genome.PageExpert)
	if err != nil {
		return fail(err)
	}
	for _, ref := range experts {
		if err := ctx.Err(); err != nil {
			return fail(fmt.Errorf("engine: budget: %w", err))
		}
		if err := gm.PageOut(ctx, self, ref, genome.TierCold); err != nil {
			return fail(err)
		}
	}
	if b.Pager, err = NewExpertPager(ctx, gm, b.id, who, m.ExpertCount()); err != nil {
		return fail(err)
	}
	if opt.Prefetch {
		if b.Prefetch, err = newPrefetcher(gm, b.id, who, f, opt.PrefetchReaders); err != nil {
			return fail(err)
		}
		b.Pager.pf = b.Prefetch
	}
	return b, nil
}

// isDense reports whether a decode reads tensor name of f in full every
// token: everything but the stacked expert tensors and the token
// embeddings, of which a token reads one row (unless the output head is
// tied to them).
func isDense(f *gguf.File, name string) bool {
	if name == "token_embd.weight" {
		_, untied := f.Tensor("output.weight")
		return !untied
	}
	for _, base := range gguf.ExpertTensorNames {
		if strings.HasSuffix(name, "."+base+".weight") {
			return false
		}
	}
	return true
}

// placed is a tensor's bytes in the file and where llama.cpp keeps them.
type placed struct {
	genome.Extent
	data uintptr
}

// mappedDense returns the dense tensors of f (isDense) that llama.cpp
// keeps in a host buffer, in file order: the candidates to pin. pin keeps
// those it finds in llama.cpp's mapping of the file.
func mappedDense(f *gguf.File, places []llama.TensorPlace) []placed {
	var out []placed
	for _, p := range places {
		t, ok := f.Tensor(p.Name)
		if !ok || !p.Host || p.Data == 0 || t.Size == 0 || !isDense(f, p.Name) {
			continue
		}
		out = append(out, placed{genome.Extent{Off: int64(t.Offset), Len: int64(t.Size)}, p.Data})
	}
	slices.SortFunc(out, func(a, b placed) int { return cmp.Compare(a.Off, b.Off) })
	return out
}

// runs merges the extents of ts (sorted) that share an OS page or touch.
func runs(ts []placed) []genome.Extent {
	ps := int64(os.Getpagesize())
	var out []genome.Extent
	for _, t := range ts {
		if n := len(out); n > 0 && t.Off <= (out[n-1].End()+ps-1)&^(ps-1) {
			out[n-1].Len = max(out[n-1].End(), t.End()) - out[n-1].Off
			continue
		}
		out = append(out, t.Extent)
	}
	return out
}

// pageBytes is the memory extents take in whole OS pages: what the
// genome charges for Range pages of them.
func pageBytes(ex []genome.Extent) int64 {
	ps := int64(os.Getpagesize())
	var n int64
	for _, e := range ex {
		n += (e.End()+ps-1)&^(ps-1) - e.Off&^(ps-1)
	}
	return n
}

// pin pages the tensors ts (mappedDense's) that llama.cpp reads from its
// own mapping of the file into Warm, as Range pages of their runs, and
// pins them there, acting as self; it returns the bytes pinned. A tensor
// whose bytes are not at its offset's address in a mapping the genome
// did not make is a copy, and left alone.
func (b *Budget) pin(ctx context.Context, self genome.PersonaID, ts []placed) (int64, error) {
	if len(ts) == 0 {
		return 0, nil
	}
	af, err := b.Genome.File(b.id)
	if err != nil {
		return 0, err
	}
	mapped := ts[:0:0]
	for _, t := range ts {
		if inForeignMapping(af.Mappings(), t) {
			mapped = append(mapped, t)
		}
	}
	rs := runs(mapped)
	for _, r := range rs {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		ref := genome.RangePage(b.id, r.Off, r.Len)
		if err := b.Genome.Pin(self, ref); err != nil {
			return 0, fmt.Errorf("pin dense weights %s: %w", ref, err)
		}
		if _, _, err := b.Genome.PageIn(ctx, self, ref); err != nil {
			return 0, fmt.Errorf("lock dense weights %s: %w", ref, err)
		}
	}
	return pageBytes(rs), nil
}

// inForeignMapping reports whether t's bytes are at its file offset's
// address in a mapping the genome did not make (llama.cpp's).
func inForeignMapping(maps []*genome.Mapping, t placed) bool {
	for _, m := range maps {
		if !m.Owned() && t.Off >= m.FileOffset() && t.End() <= m.FileOffset()+m.Len() &&
			t.data == m.Addr()+uintptr(t.Off-m.FileOffset()) {
			return true
		}
	}
	return false
}

// Pinned returns the bytes of dense weights b keeps locked in memory
// beside the budget: those llama.cpp reads from the file mapping, unless
// RLIMIT_MEMLOCK could not hold them all or the memory limit leaves no
// room to lock anything (MemoryCheck).
func (b *Budget) Pinned() int64 { return b.pinned }

// Bytes returns the budget: the one asked for, or what fitted the
// memory limit when that was less (see MemoryCheck).
func (b *Budget) Bytes() int64 { return b.bytes }

// MemoryCheck compares what a decode within b keeps in memory with the
// limit the process runs under (genome.MemoryLimit: its cgroup's, or the
// machine's): the budget, the dense weights every token reads from the
// file mapping, the process's anonymous memory (KV cache, compute
// buffers once its contexts exist, and weights llama.cpp repacked), and
// an eighth of the limit for the page cache that
// reads pass through (page-ins, prefetch, the binary). Past the limit the
// kernel reclaims weights the next token reads again and generation slows
// several-fold (bench-moe in a 2 GiB cgroup with its 444 MiB of dense
// weights: 4-6 tokens/s at a budget of 1.25 GiB, 0.3 at 1.5 GiB all
// locked). NewBudget lowers a budget that does not fit to one that does
// (or, when none does, locks none of it); MemoryCheck returns a warning
// that says so, or that the budget no longer fits now that the process
// uses more memory. It returns "" when the budget fits, or when the limit
// cannot be read.
func (b *Budget) MemoryCheck() string {
	if b == nil {
		return ""
	}
	m, ok := memoryNow()
	if !ok {
		return ""
	}
	fit := m.fit(b.dense)
	if b.asked <= b.bytes && b.bytes <= fit {
		return ""
	}
	msg := fmt.Sprintf("budget %s + dense weights %s + anonymous memory %s + page cache %s = %s, over the %s memory limit (%s)",
		mib(b.asked), mib(b.dense), mib(m.anon), mib(m.slack()), mib(b.asked+b.dense+m.anon+m.slack()), mib(m.limit), m.where)
	switch {
	case b.bytes < b.asked && b.bytes <= fit:
		return msg + fmt.Sprintf(": paging within %s instead", mib(b.bytes))
	case b.bytes < b.asked:
		// Lowered when the Budget was made, before the context's KV cache
		// and buffers existed; with them, even that is too much now.
		msg += fmt.Sprintf(": paging within %s instead, which no longer fits either", mib(b.bytes))
	default:
		msg += ": the kernel will reclaim weights that every token reads, and generation will slow down"
	}
	if fit > 0 {
		msg += fmt.Sprintf("; a budget of %s fits", mib(fit))
	}
	return msg
}

// memory is the process's memory limit and its anonymous memory now.
type memory struct {
	limit, anon int64
	where       string
}

func memoryNow() (memory, bool) {
	limit, where, err := genome.MemoryLimit()
	if err != nil {
		return memory{}, false
	}
	anon, err := genome.AnonymousMemory()
	if err != nil {
		return memory{}, false
	}
	return memory{limit: limit, anon: anon, where: where}, true
}

// slack is the share of the limit left to the page cache.
func (m memory) slack() int64 { return m.limit / 8 }

// fit is the largest budget that leaves room for dense bytes of weights,
// the anonymous memory and the slack; negative when nothing does.
func (m memory) fit(dense int64) int64 { return m.limit - dense - m.anon - m.slack() }

func mib(n int64) string { return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20)) }

// Close stops the prefetch readers, lets go of llama.cpp's mapping and
// closes the genome. It is
// idempotent, and safe before or after the model's Close (which detaches
// the genome itself).
func (b *Budget) Close() error {
	if b == nil || b.Genome == nil {
		return nil
	}
	b.unhook()
	err := errors.Join(b.Prefetch.Close(), b.Genome.DetachMappings(b.id), b.Genome.Close())
	b.Genome = nil
	return err
}

// ParseBytes parses a size such as "512MiB", "6GiB", "1.5G" or "1048576"
// (binary units; K, M, G and T are taken as KiB, MiB, GiB and TiB).
func ParseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"T", 1 << 40}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mult = strings.TrimSpace(strings.TrimSuffix(t, u.suffix)), u.m
			break
		}
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil || v < 0 || v*float64(mult) > 1<<62 {
		return 0, fmt.Errorf("engine: bad size %q (want e.g. 512MiB, 6GiB)", s)
	}
	return int64(v * float64(mult)), nil
}
