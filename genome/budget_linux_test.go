package genome

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
)

// TestBudgetKeepsMoEUnderLimit runs a routed decode over an MoE file three
// times the size of the budget, the way the engine does: llama.cpp maps
// and populates the whole file, the genome attaches to that mapping,
// evicts everything, and pages experts in on demand. After every token the
// kernel's own count (mincore over the whole file) stays within budget.
func TestBudgetKeepsMoEUnderLimit(t *testing.T) {
	p := writeMoE(t)
	st, _ := os.Stat(p)
	budget := st.Size() / 3
	m, err := NewLocal(Config{Tiers: Budget(budget)})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	id, _, err := m.RegisterGGUF(p)
	if err != nil {
		t.Fatal(err)
	}
	who := NewPersonaID()
	m.RegisterPersona(Persona{ID: who})
	llama := foreignMap(t, p, int(st.Size()))
	if _, err := m.AttachMappings(id); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.PageOut(ctx, WholePage(id), TierCold); err != nil {
		t.Fatal(err)
	}
	if got, _ := Resident(llama); got != 0 {
		t.Fatalf("after evicting the loaded model: %d resident, want 0", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(r, 1.2, 1, uint64(moeSpec.Experts-1))
	var faults int
	for tok := range 60 {
		for l := range moeSpec.Layers {
			for range moeSpec.ExpertsUsed {
				e := int(zipf.Uint64())
				h, f, err := m.PageIn(ctx, who, ExpertPage(id, l, e))
				if err != nil {
					t.Fatalf("token %d layer %d expert %d: %v", tok, l, e, err)
				}
				if f != nil {
					faults++
				}
				for _, b := range h.Bytes() { // inference reads the expert
					_ = b[len(b)-1]
				}
			}
		}
		res, _ := Resident(llama)
		s := m.Stats()
		var held int64
		for _, c := range s.Tiers {
			if c.Role == TierWarm || c.Role == TierBench {
				held += c.Used
			}
		}
		if held > budget || res > budget {
			t.Fatalf("token %d: warm+bench hold %d, mincore %d resident, budget %d", tok, held, res, budget)
		}
	}
	s := m.Stats()
	if faults == 0 || s.Evictions == 0 || s.Hits == 0 {
		t.Fatalf("got %d faults, %d evictions, %d hits; want all three non-zero", faults, s.Evictions, s.Hits)
	}
	t.Logf("budget %d of %d bytes: %d faults, %d hits, %d evictions", budget, st.Size(), faults, s.Hits, s.Evictions)
}
