package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
	"github.com/strata-llm/strata/llama"
)

// TestBudgetModelClosedFirst closes the model before the Budget: the
// model's Close detaches the genome from llama.cpp's mapping before the
// mapping is released, so the genome's later work touches only its own
// mapping, and Budget.Close still succeeds.
func TestBudgetModelClosedFirst(t *testing.T) {
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), engine.PagedExperts(llama.ModelParams{}))
	if err != nil {
		t.Fatal(err)
	}
	b, err := engine.NewBudget(context.Background(), m, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if got := generateGreedy(t, m, b.Pager.Observer(), []llama.Token{1, 70, 80}, 4, nil); len(got) != 4 {
		t.Fatalf("got %d tokens", len(got))
	}
	file, err := b.Genome.File(b.Artifact())
	if err != nil {
		t.Fatal(err)
	}
	foreign := func() int {
		n := 0
		for _, mp := range file.Mappings() {
			if !mp.Owned() {
				n++
			}
		}
		return n
	}
	if foreign() == 0 {
		t.Fatal("the genome is not attached to llama.cpp's mapping")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if n := foreign(); n != 0 {
		t.Errorf("after the model's Close the genome still holds %d foreign mappings", n)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Budget.Close after the model's: %v", err)
	}
}

// TestBudgetMemoryCheck: a budget that fits the machine is kept and draws
// no warning; one larger than the machine's memory (or the cgroup's
// limit) is lowered to fit and draws a warning that names the limit, the
// budget and the dense weights.
func TestBudgetMemoryCheck(t *testing.T) {
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), engine.PagedExperts(llama.ModelParams{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	limit, where, err := genome.MemoryLimit()
	if err != nil {
		t.Skip(err)
	}
	for _, tc := range []struct {
		bytes int64
		warn  bool
	}{{1 << 20, false}, {limit + 1<<30, true}} {
		b, err := engine.NewBudget(context.Background(), m, tc.bytes)
		if err != nil {
			t.Fatal(err)
		}
		w, got := b.MemoryCheck(), b.Bytes()
		b.Close()
		if tc.warn && (got >= limit || got <= 0) || !tc.warn && got != tc.bytes {
			t.Errorf("budget of %d bytes under a limit of %d: paging within %d", tc.bytes, limit, got)
		}
		switch {
		case !tc.warn && w != "":
			t.Errorf("budget of 1 MiB under %d bytes (%s): got warning %q", limit, where, w)
		case tc.warn && (!strings.Contains(w, "over the") || !strings.Contains(w, where) || !strings.Contains(w, "dense weights") || !strings.Contains(w, "instead")):
			t.Errorf("budget of %d bytes over %d (%s): got warning %q", tc.bytes, limit, where, w)
		}
	}
	var none *engine.Budget
	if w := none.MemoryCheck(); w != "" {
		t.Errorf("nil Budget: got %q", w)
	}
}

// TestBudgetBelowOneLayer: a budget that cannot hold one layer's routed
// experts is refused saying so; it used to be accepted, and every decode
// then failed with the genome's "tier full" behind "decode aborted".
func TestBudgetBelowOneLayer(t *testing.T) {
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), engine.PagedExperts(llama.ModelParams{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	_, err = engine.NewBudget(context.Background(), m, 8<<10)
	if err == nil || !strings.Contains(err.Error(), "less than one layer's routed experts") {
		t.Fatalf("an 8 KiB budget: got %v", err)
	}
}

// TestBudgetContext: a cancelled ctx stops NewBudget's setup, while a
// Budget made under a ctx cancelled afterwards keeps paging (the pager
// outlives the call that made it).
func TestBudgetContext(t *testing.T) {
	m, err := llama.LoadModel(tinyModel(t, "tiny-moe"), engine.PagedExperts(llama.ModelParams{}))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := engine.NewBudget(ctx, m, 1<<20); !errors.Is(err, context.Canceled) {
		t.Fatalf("NewBudget under a cancelled ctx: got %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	b, err := engine.NewBudget(ctx, m, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cancel()
	if got := generateGreedy(t, m, b.Pager.Observer(), []llama.Token{1, 70, 80}, 4, nil); len(got) != 4 {
		t.Fatalf("after the ctx was cancelled: %d tokens", len(got))
	}
}
