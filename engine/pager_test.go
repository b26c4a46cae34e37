package engine_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// generateGreedy runs n greedy tokens on a fresh context of m.
func generateGreedy(t testing.TB, m *llama.Model, obs *llama.Observer, prompt []llama.Token, n int, each func()) []llama.Token {
	t.Helper()
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 256, Threads: 1, Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	s, _ := llama.NewSampler(llama.SamplerParams{Greedy: true})
	defer s.Close()
	g, err := engine.NewGenerator(c, s)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	var out []llama.Token
	if _, err := g.Generate(context.Background(), prompt, n, func(tok llama.Token) bool {
		out = append(out, tok)
		if each != nil {
			each()
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestExpertPagerBudget runs real llama.cpp inference on an MoE model
// whose experts are half again the genome's budget (the Warm half of
// which holds one token's 8 experts, so a repeat can hit). The genome attaches
// to llama.cpp's own mapping, evicts the whole file after load, and the
// pager pages in each layer's routed experts as the router picks them.
// After every token the expert bytes the kernel holds (mincore) stay within
// the budget, and the tokens equal those of an unconstrained run.
func TestExpertPagerBudget(t *testing.T) {
	path := tinyModel(t, "tiny-moe")
	info, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	nLayers, nExperts := info.BlockCount(), info.ExpertCount()
	var expertBytes int64
	for l := 0; l < nLayers; l++ {
		for e := 0; e < nExperts; e++ {
			rs, _ := info.ExpertRanges(l, e)
			for _, r := range rs {
				expertBytes += int64(r.Len)
			}
		}
	}
	budget := expertBytes * 2 / 3

	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	prompt, _ := m.Vocab().Tokenize("Experts, page in!", true, false)
	want := generateGreedy(t, m, nil, prompt, 24, nil)

	tiers, err := genome.Budget(budget)
	if err != nil {
		t.Fatal(err)
	}
	gm, err := genome.NewLocal(genome.Config{Tiers: tiers})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := gm.RegisterGGUF(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		// The genome lets go of llama.cpp's mapping before llama.cpp
		// unmaps it.
		if err := gm.DetachMappings(id); err != nil {
			t.Error(err)
		}
		gm.Close()
	}()
	if n, err := gm.AttachMappings(id); err != nil || n == 0 {
		t.Fatalf("AttachMappings: got %d mappings, %v; want llama.cpp's mapping", n, err)
	}
	who, self := genome.NewPersonaID(), genome.NewPersonaID()
	full := genome.FullAccess
	for _, p := range []genome.Persona{{ID: who, Name: "inference"}, {ID: self, Name: "engine", Access: &full}} {
		if err := gm.RegisterPersona(p); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := gm.PageOut(ctx, self, genome.WholePage(id), genome.TierCold); err != nil {
		t.Fatal(err)
	}
	expertPages, err := gm.Pages(id, genome.PageExpert)
	if err != nil || len(expertPages) != nLayers*nExperts {
		t.Fatalf("Pages(expert): got %d, %v; want %d", len(expertPages), err, nLayers*nExperts)
	}
	residentExperts := func() int64 {
		var sum int64
		for _, ref := range expertPages {
			r, _, err := gm.Residency(ref)
			if err != nil {
				t.Fatal(err)
			}
			sum += r
		}
		return sum
	}
	if got := residentExperts(); got != 0 {
		t.Fatalf("after PageOut to Cold: %d expert bytes resident, want 0", got)
	}

	pager, err := engine.NewExpertPager(ctx, gm, id, who, nExperts)
	if err != nil {
		t.Fatal(err)
	}
	// Experts are not page-aligned: neighbours share an OS page at each
	// edge, which mincore counts for both.
	slack := int64(len(expertPages)) * 2 * 4096
	var peak int64
	got := generateGreedy(t, m, pager.Observer(), prompt, 24, func() {
		res := residentExperts()
		peak = max(peak, res)
		var held int64
		for _, c := range gm.Stats().Tiers {
			if c.Role == genome.TierWarm || c.Role == genome.TierBench {
				held += c.Used
			}
		}
		if held > budget || res > budget+slack {
			t.Errorf("genome holds %d, kernel has %d expert bytes resident; budget %d (+%d edge slack)", held, res, budget, slack)
		}
	})
	if err := pager.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("tokens under the budget differ:\n got %v\nwant %v", got, want)
	}
	st := gm.Stats()
	if st.Hits == 0 || st.Evictions == 0 || peak == 0 {
		t.Errorf("got %d hits, %d evictions, peak %d resident; want all non-zero", st.Hits, st.Evictions, peak)
	}
	t.Logf("experts %d bytes, budget %d: peak %d resident, %d hits, %d evictions, %d bytes paged in", expertBytes, budget, peak, st.Hits, st.Evictions, st.BytesPagedIn)

	// Evict again and decode without the pager: llama.cpp faults the expert
	// pages back itself, which shows it reads them from the file mapping
	// (not from a repacked copy), so the budget above was not vacuous.
	if err := gm.PageOut(ctx, self, genome.WholePage(id), genome.TierCold); err != nil {
		t.Fatal(err)
	}
	generateGreedy(t, m, nil, prompt, 4, nil)
	if r := residentExperts(); r == 0 {
		t.Error("decoding without the pager left no expert page resident: llama.cpp is not reading the mapping")
	}
}

func TestExpertPagerErrors(t *testing.T) {
	if _, err := engine.NewExpertPager(context.Background(), nil, genome.ArtifactID{}, genome.PersonaID{}, 0); err == nil {
		t.Error("0 experts: got nil error")
	}
	// A persona the genome does not know is refused on the first page-in,
	// which stops the decode.
	path := tinyModel(t, "tiny-moe")
	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	tiers, _ := genome.Budget(1 << 20)
	gm, _ := genome.NewLocal(genome.Config{Tiers: tiers})
	defer gm.Close()
	id, _, _ := gm.RegisterGGUF(path)
	pager, _ := engine.NewExpertPager(context.Background(), gm, id, genome.NewPersonaID(), m.ExpertCount())
	c, _ := llama.NewContext(m, llama.ContextParams{NCtx: 256, Threads: 1, Observer: pager.Observer()})
	defer c.Close()
	b, _ := llama.NewBatch(8, 1)
	defer b.Close()
	b.AddSequence([]llama.Token{1, 40, 41}, 0, 0)
	if err := c.Decode(b); !errors.Is(err, llama.ErrAborted) {
		t.Errorf("decode with a failing pager: got %v, want ErrAborted", err)
	}
	if pager.Err() == nil {
		t.Error("pager.Err: got nil after a refused page-in")
	} else {
		t.Logf("pager error: %v", pager.Err())
	}
}

func TestNewBudgetAndParseBytes(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{{"512MiB", 512 << 20}, {"6GiB", 6 << 30}, {"1.5G", 3 << 29}, {"1048576", 1 << 20}, {"64K", 64 << 10}} {
		if got, err := engine.ParseBytes(tc.in); err != nil || got != tc.want {
			t.Errorf("ParseBytes(%q): got %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "GiB", "-1MiB", "12XB", "lots"} {
		if _, err := engine.ParseBytes(bad); err == nil {
			t.Errorf("ParseBytes(%q): got nil error", bad)
		}
	}

	dense, err := llama.LoadModel(tinyModel(t, "tiny-dense"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer dense.Close()
	if _, err := engine.NewBudget(context.Background(), dense, 1<<20); err == nil {
		t.Error("NewBudget on a dense model: got nil error")
	}
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), llama.ModelParams{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	b, err := engine.NewBudget(context.Background(), m, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	got := generateGreedy(t, m, b.Pager.Observer(), []llama.Token{1, 70, 80}, 8, nil)
	if len(got) != 8 || b.Pager.Err() != nil {
		t.Errorf("got %d tokens, pager error %v", len(got), b.Pager.Err())
	}
	if st := b.Genome.Stats(); st.TotalFaults() == 0 {
		t.Error("no page faults: the experts were not paged through the genome")
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
