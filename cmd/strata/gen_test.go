package main

import (
	"bytes"
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
