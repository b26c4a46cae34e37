package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/modelgen"
)

// TestInspectAppliesLoaderChecks: inspect summarises any readable GGUF, but
// a file llama.cpp's loader would refuse (here: more experts used than
// there are) must not come out as fine.
func TestInspectAppliesLoaderChecks(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.gguf")
	spec, _ := modelgen.Preset("tiny-moe")
	if err := modelgen.Write(good, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := runInspect([]string{good}, &out, &errOut); err != nil {
		t.Fatalf("inspect of a good model: %v", err)
	}
	if !strings.Contains(out.String(), "loadable:     passes") {
		t.Errorf("inspect of a good model does not say it is loadable:\n%s", out.String())
	}

	// An MoE model with a dense leading layer: its expert table says so
	// instead of failing.
	ds := filepath.Join(dir, "deepseek.gguf")
	dspec, _ := modelgen.Preset("tiny-deepseek")
	if err := modelgen.Write(ds, dspec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := runInspect([]string{ds}, &out, &errOut); err != nil {
		t.Fatalf("inspect of a model with a dense leading layer: %v", err)
	}
	if !strings.Contains(out.String(), "layer 0: dense, no experts") || !strings.Contains(out.String(), "loadable:     passes") {
		t.Errorf("inspect of tiny-deepseek: no dense layer 0 or not loadable:\n%s", out.String())
	}

	w := &gguf.Writer{}
	for _, kv := range []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "llama.expert_count", Value: uint32(4)},
		{Key: "llama.expert_used_count", Value: uint32(8)},
	} {
		if err := w.SetKV(kv.Key, kv.Value); err != nil {
			t.Fatal(err)
		}
	}
	bad := filepath.Join(dir, "bad.gguf")
	f, err := os.Create(bad)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(f, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	err = runInspect([]string{bad}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "expert_used_count") {
		t.Errorf("inspect of a file the loader refuses: got %v, want an error naming expert_used_count", err)
	}
	if !strings.Contains(out.String(), "loadable:     no") {
		t.Errorf("inspect output does not say the file is not loadable:\n%s", out.String())
	}
}
