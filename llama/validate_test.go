package llama_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

// TestValidateRefusesWhatLlamaAssertsOn writes small GGUF files that break
// one loader rule each — every one of them aborted the process when it
// reached llama.cpp — and checks LoadModel refuses them naming the key.
func TestValidateRefusesWhatLlamaAssertsOn(t *testing.T) {
	base := []gguf.KV{
		{Key: "general.architecture", Value: "llama"},
		{Key: "tokenizer.ggml.tokens", Value: []string{"<unk>", "<s>", "</s>"}},
		{Key: "tokenizer.ggml.scores", Value: []float32{0, 0, 0}},
		{Key: "tokenizer.ggml.token_type", Value: []int32{2, 3, 3}},
	}
	with := func(kvs ...gguf.KV) []gguf.KV {
		out := append([]gguf.KV(nil), base...)
		for _, kv := range kvs {
			replaced := false
			for i := range out {
				if out[i].Key == kv.Key {
					out[i], replaced = kv, true
				}
			}
			if !replaced {
				out = append(out, kv)
			}
		}
		return out
	}
	tests := []struct {
		name string
		kvs  []gguf.KV
		dims []uint64
		want string
	}{
		{"duplicate token", with(gguf.KV{Key: "tokenizer.ggml.tokens", Value: []string{"<unk>", "<s>", "<s>"}}), nil, "appears twice"},
		{"float token types", with(gguf.KV{Key: "tokenizer.ggml.token_type", Value: []float32{2, 3, 3}}), nil, "tokenizer.ggml.token_type"},
		{"scores short", with(gguf.KV{Key: "tokenizer.ggml.scores", Value: []float32{0}}), nil, "tokenizer.ggml.scores"},
		{"string head counts", with(gguf.KV{Key: "llama.attention.head_count", Value: []string{"4"}}), nil, "llama.attention.head_count"},
		{"bool arch array", with(gguf.KV{Key: "llama.whatever", Value: []bool{true}}), nil, "llama.whatever"},
		{"more used than experts", with(gguf.KV{Key: "llama.expert_count", Value: uint32(4)}, gguf.KV{Key: "llama.expert_used_count", Value: uint32(8)}), nil, "expert_used_count"},
		{"experts, none used", with(gguf.KV{Key: "llama.expert_count", Value: uint32(4)}, gguf.KV{Key: "llama.expert_used_count", Value: uint32(0)}), nil, "expert_used_count is 0"},
		{"too many experts", with(gguf.KV{Key: "llama.expert_count", Value: uint32(1025)}, gguf.KV{Key: "llama.expert_used_count", Value: uint32(2)}), nil, "limit 1024"},
		{"per-layer used over experts", with(gguf.KV{Key: "llama.block_count", Value: uint32(2)}, gguf.KV{Key: "llama.expert_count", Value: uint32(4)}, gguf.KV{Key: "llama.expert_used_count", Value: []uint32{2, 8}}), nil, "expert_used_count 8"},
		{"no layers", with(gguf.KV{Key: "llama.block_count", Value: uint32(0)}), nil, "block_count 0"},
		{"too many layers", with(gguf.KV{Key: "llama.block_count", Value: uint32(513)}), nil, "range 1..512"},
		{"nextn over layers", with(gguf.KV{Key: "llama.block_count", Value: uint32(2)}, gguf.KV{Key: "llama.nextn_predict_layers", Value: uint32(3)}), nil, "nextn_predict_layers 3"},
		{"zero extent", base, []uint64{0, 8}, "extent 0"},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := &gguf.Writer{}
			for _, kv := range tt.kvs {
				if err := w.SetKV(kv.Key, kv.Value); err != nil {
					t.Fatal(err)
				}
			}
			dims := tt.dims
			if dims == nil {
				dims = []uint64{8, 8}
			}
			if err := w.AddTensor("token_embd.weight", gguf.TypeF32, dims...); err != nil {
				t.Fatal(err)
			}
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".gguf")
			f, err := os.Create(p)
			if err != nil {
				t.Fatal(err)
			}
			_, err = w.Write(f, func(_ int, ti gguf.TensorInfo, out io.Writer) error {
				_, err := out.Write(make([]byte, ti.Size))
				return err
			})
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
			m, err := llama.LoadModel(p, llama.ModelParams{})
			if err == nil {
				m.Close()
				t.Fatal("got nil error")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

// TestLoadReadsTheValidatedFile: LoadModel hands llama.cpp the file it
// validated (/proc/self/fd/N), so a file put in its place at the path
// after the check (here: a corrupt one renamed over it) is never what
// llama.cpp reads.
func TestLoadReadsTheValidatedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.gguf")
	src, err := os.ReadFile(testModel(t, "tiny-dense", gguf.TypeQ8_0))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, src, 0o644); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	info, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	pinned := llama.PinnedPath(fh, path, info)
	if pinned == path {
		t.Skip("no /proc/self/fd here")
	}
	// The swap: garbage replaces the file at the path.
	bad := filepath.Join(dir, "bad.gguf")
	if err := os.WriteFile(bad, []byte("GGUF but not really"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(bad, path); err != nil {
		t.Fatal(err)
	}
	m, err := llama.LoadModel(pinned, llama.ModelParams{})
	if err != nil {
		t.Fatalf("load through the pinned path after the swap: %v", err)
	}
	defer m.Close()
	if m.Layers() == 0 {
		t.Error("the pinned path did not load the validated model")
	}
	if _, err := llama.LoadModel(path, llama.ModelParams{}); err == nil {
		t.Error("the swapped-in garbage at the path loaded")
	}
}

// TestMissingByteTokenIsAnError renames the byte token <0x68> ("h") of a
// byte-vocabulary model. The file passes validation and loads, but
// llama.cpp's tokenizer looks the byte up with unordered_map::at, which
// throws; unguarded, that killed the process on the first prompt with an
// "h" in it. It must be an error, and the model must stay usable for text
// that does not need the byte.
func TestMissingByteTokenIsAnError(t *testing.T) {
	src, err := os.ReadFile(testModel(t, "tiny-dense", gguf.TypeQ8_0))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(src, []byte("<0x68>")) != 1 {
		t.Fatal("the generated model does not hold the byte token <0x68> once")
	}
	path := filepath.Join(t.TempDir(), "no-h.gguf")
	if err := os.WriteFile(path, bytes.Replace(src, []byte("<0x68>"), []byte("<<x68>"), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	m := load(t, path, llama.ModelParams{})
	v := m.Vocab()
	if _, err := v.Tokenize("ab", false, false); err != nil {
		t.Fatalf("text without the missing byte: %v", err)
	}
	_, err = v.Tokenize("hi", false, false)
	if !errors.Is(err, llama.ErrBadVocab) {
		t.Fatalf("text with the missing byte: got %v, want ErrBadVocab", err)
	}
	t.Log(err)
}

// TestAdapterIsNotAModel: a LoRA adapter given as a model is refused
// saying what it is, before llama.cpp misses a hyperparameter.
func TestAdapterIsNotAModel(t *testing.T) {
	spec, err := modelgen.Preset("tiny-dense")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "lora.gguf")
	if err := modelgen.WriteLoRA(path, spec, modelgen.Options{Type: gguf.TypeF32, Seed: 1}, 4); err != nil {
		t.Fatal(err)
	}
	_, err = llama.LoadModel(path, llama.ModelParams{})
	if err == nil || !strings.Contains(err.Error(), "is an adapter (lora), not a model") {
		t.Fatalf("LoadModel of an adapter: got %v", err)
	}
}
