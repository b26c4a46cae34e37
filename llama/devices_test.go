package llama_test

import (
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

// TestModelDevices holds ModelParams.Devices and SplitMode to llama-bench's
// -dev and -sm: a device that does not exist or is a CPU is an error naming
// it, NoDevices and every split mode load on the CPU and generate.
func TestModelDevices(t *testing.T) {
	path := testModel(t, "tiny-dense", gguf.TypeQ8_0)
	for _, tc := range []struct {
		name string
		p    llama.ModelParams
		want string // error substring; "" loads
	}{
		{"unknown", llama.ModelParams{Devices: []string{"NoSuchGPU0"}}, `device "NoSuchGPU0": no such device`},
		{"cpu", llama.ModelParams{Devices: []string{"CPU"}}, `device "CPU": a CPU device`},
		{"both", llama.ModelParams{Devices: []string{"CUDA0"}, NoDevices: true}, "NoDevices both set"},
		{"bad split", llama.ModelParams{SplitMode: llama.SplitMode(9)}, "unknown split mode 9"},
		{"none", llama.ModelParams{NoDevices: true}, ""},
		{"split none", llama.ModelParams{SplitMode: llama.SplitNone}, ""},
		{"split row", llama.ModelParams{SplitMode: llama.SplitRow}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want != "" {
				m, err := llama.LoadModel(path, tc.p)
				if err == nil {
					m.Close()
					t.Fatalf("got nil error, want one containing %q", tc.want)
				}
				if !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want an error containing %q", err, tc.want)
				}
				return
			}
			m := load(t, path, tc.p)
			c := newContext(t, m, llama.ContextParams{NCtx: 64})
			if toks := greedy(t, c, []llama.Token{1, 50}, 2); len(toks) != 2 {
				t.Errorf("got %d tokens, want 2", len(toks))
			}
		})
	}
}
