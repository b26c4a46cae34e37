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

// TestGenList checks that strata gen -list names every preset with the
// architecture llama.cpp will load it as.
func TestGenList(t *testing.T) {
	var out, errw bytes.Buffer
	if code := run([]string{"gen", "-list", "-type", "q4_0"}, &out, &errw); code != 0 {
		t.Fatalf("strata gen -list: got exit %d (%s), want 0", code, errw.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1+len(modelgen.PresetNames()) || !strings.Contains(lines[0], "SIZE (q4_0)") {
		t.Fatalf("got %d lines:\n%s\nwant a q4_0 header and one line per preset (%d)", len(lines), out.String(), len(modelgen.PresetNames()))
	}
	for i, name := range modelgen.PresetNames() {
		spec, _ := modelgen.Preset(name)
		f := strings.Fields(lines[1+i])
		if len(f) < 2 || f[0] != name || f[1] != spec.Architecture() {
			t.Errorf("line %d: got %q, want preset %s, architecture %s", 1+i, lines[1+i], name, spec.Architecture())
		}
	}
	if !strings.Contains(out.String(), "4 (1 dense)") || !strings.Contains(out.String(), "2 shared") {
		t.Errorf("got:\n%s\nwant tiny-deepseek's dense layer and shared experts shown", out.String())
	}
}

// TestGenArch writes a preset of each new architecture and checks the file.
func TestGenArch(t *testing.T) {
	for _, preset := range []string{"tiny-qwen3moe", "tiny-deepseek", "tiny-mellum"} {
		t.Run(preset, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), preset+".gguf")
			var out, errw bytes.Buffer
			if code := run([]string{"gen", "-preset", preset, "-q", "-o", path}, &out, &errw); code != 0 {
				t.Fatalf("strata gen: got exit %d (%s), want 0", code, errw.String())
			}
			spec, _ := modelgen.Preset(preset)
			f, err := gguf.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			if f.Architecture() != spec.Architecture() || !strings.Contains(out.String(), "("+spec.Architecture()+")") {
				t.Errorf("got architecture %q, output %q, want %s", f.Architecture(), out.String(), spec.Architecture())
			}
		})
	}
}

// TestGenQ4_K_M writes a preset with -type q4_k_m and checks the file is
// llama-quantize's Q4_K_M with the types modelgen planned, that the write
// line says what the mix chose, and that -list sizes presets at the mix.
func TestGenQ4_K_M(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	var out, errw bytes.Buffer
	if code := run([]string{"gen", "-preset", "tiny-moe", "-type", "q4_k_m", "-q", "-o", path}, &out, &errw); code != 0 {
		t.Fatalf("strata gen: got exit %d (%s), want 0", code, errw.String())
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if ft, _ := f.Uint("general.file_type"); ft != 15 {
		t.Errorf("general.file_type: got %d, want 15", ft)
	}
	spec, _ := modelgen.Preset("tiny-moe")
	want, _ := modelgen.Tensors(spec, modelgen.Options{Mix: modelgen.MixQ4_K_M})
	for i, ti := range f.Tensors {
		if ti.Name != want[i].Name || ti.Type != want[i].Type {
			t.Errorf("tensor %d: got %s %v, want %s %v", i, ti.Name, ti.Type, want[i].Name, want[i].Type)
		}
	}
	// tiny-moe: 8 experts and rows of 128, so Q4_K falls back to Q5_0 and
	// attn_output's Q5_K to Q5_1.
	if got := out.String(); !strings.Contains(got, "q4_k_m [q5_0 15, f32 13, q8_0 11, q5_1 4]") {
		t.Errorf("output: got %q, want the mix with its type counts", got)
	}

	out.Reset()
	if code := run([]string{"gen", "-list", "-type", "Q4_K_M"}, &out, &errw); code != 0 {
		t.Fatalf("strata gen -list: got exit %d (%s), want 0", code, errw.String())
	}
	if !strings.Contains(out.String(), "SIZE (q4_k_m)") || !strings.Contains(out.String(), "911.2 MiB") {
		t.Errorf("got:\n%s\nwant a q4_k_m header and bench-dense at 911.2 MiB", out.String())
	}

	errw.Reset()
	if code := run([]string{"gen", "-preset", "tiny-moe", "-type", "q4_k", "-q", "-o", path}, &out, &errw); code == 0 || !strings.Contains(errw.String(), "q4_k_m") {
		t.Errorf("-type q4_k: got exit %d (%s), want an error naming the types, q4_k_m among them", code, errw.String())
	}
}

// TestGenRouterVocab checks that -router and -vocab replace the preset's
// and reach the file, and that bad names are refused.
func TestGenRouterVocab(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.gguf")
	var out, errw bytes.Buffer
	if code := run([]string{"gen", "-preset", "tiny-moe", "-router", "zipf", "-vocab", "llama3", "-q", "-o", path}, &out, &errw); code != 0 {
		t.Fatalf("strata gen: got exit %d (%s), want 0", code, errw.String())
	}
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := f.Uint("llama.vocab_size"); n != 128256 {
		t.Errorf("llama.vocab_size: got %d, want 128256", n)
	}
	if !strings.Contains(out.String(), "vocab llama3, router zipf") {
		t.Errorf("got %q, want the vocabulary and router named", out.String())
	}
	for _, args := range [][]string{{"-router", "lru"}, {"-vocab", "gpt-5"}, {"-router", "realistic"}} {
		// tiny-moe has 2 KV heads: too few for the calibrated routers' context heads.
		out.Reset()
		errw.Reset()
		a := append([]string{"gen", "-preset", "tiny-moe", "-q", "-o", path}, args...)
		if code := run(a, &out, &errw); code == 0 {
			t.Errorf("strata gen %v: got exit 0, want an error", args)
		}
	}
	out.Reset()
	if code := run([]string{"gen", "-list"}, &out, &errw); code != 0 {
		t.Fatalf("strata gen -list: got exit %d", code)
	}
	for _, want := range []string{"router realistic", "router uniform", "llama3", "bytes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-list: got\n%s\nwant %q in it", out.String(), want)
		}
	}
}

// TestGenRefusesBeforeWriting: output paths and adapter flags that cannot
// work are refused before any file is written (a directory as -o failed
// only at the rename, after the whole model was written).
func TestGenRefusesBeforeWriting(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "m.gguf")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-o", dir}, "is a directory"},
		{[]string{"-o", model, "-lora", model}, "would overwrite the model"},
		{[]string{"-o", model, "-lora", filepath.Join(dir, "l.gguf"), "-lora-rank", "0"}, "-lora-rank 0"},
		{[]string{"-o", model, "-lora-rank", "4"}, "-lora-rank without -lora"},
	} {
		var out, errb bytes.Buffer
		rc := run(append([]string{"gen", "-q"}, tc.args...), &out, &errb)
		if rc != 1 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("gen %v: exit %d, stderr %q; want 1 and %q", tc.args, rc, errb.String(), tc.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("files were written: %v", entries)
	}
}
