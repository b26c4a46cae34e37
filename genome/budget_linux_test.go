package genome

import (
	"bytes"
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
	file, err := os.ReadFile(p) // before the eviction below drops it again
	if err != nil {
		t.Fatal(err)
	}
	budget := int64(len(file)) / 3
	tiers, err := Budget(budget)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewLocal(Config{Tiers: tiers})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	id, _, err := m.RegisterGGUF(p)
	if err != nil {
		t.Fatal(err)
	}
	who, engine := NewPersonaID(), NewPersonaID()
	full := FullAccess
	for _, p := range []Persona{{ID: who, Name: "inference"}, {ID: engine, Name: "engine", Access: &full}} {
		if err := m.RegisterPersona(p); err != nil {
			t.Fatal(err)
		}
	}
	llama := foreignMap(t, p, len(file))
	if _, err := m.AttachMappings(id); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := m.PageOut(ctx, engine, WholePage(id), TierCold); err != nil {
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
				// Inference reads every byte of the expert: compare them
				// with the file, which loads each one, so a page the
				// genome did not really bring in faults here and counts
				// against the budget below.
				for i, b := range h.Bytes() {
					x := h.Extents()[i]
					if !bytes.Equal(b, file[x.Off:x.End()]) {
						t.Fatalf("token %d layer %d expert %d: slice %d [%d+%d] differs from the file", tok, l, e, i, x.Off, x.Len)
					}
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
	t.Logf("budget %d of %d bytes: %d faults, %d hits, %d evictions", budget, len(file), faults, s.Hits, s.Evictions)
}
