package modelgen

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/strata-llm/strata/gguf"
)

// Token types of llama.cpp (enum llama_token_type).
const (
	tokNormal  = 1
	tokUnknown = 2
	tokControl = 3
	tokByte    = 6
)

// Fixed token ids of the byte vocabulary (VocabBytes).
const (
	TokenUnk   = 0
	TokenBOS   = 1
	TokenEOS   = 2
	TokenByte0 = 3 // "<0x00>"; byte b is TokenByte0+b
	// TokenSpace is "▁" (U+2581), a normal token. llama.cpp's SPM tokenizer
	// rewrites every space to "▁" before tokenizing; without this token a
	// space would fall back to the three bytes of "▁" and detokenize as "▁"
	// rather than " ".
	TokenSpace = TokenByte0 + 256
	// VocabSize is the size of the byte vocabulary.
	VocabSize = TokenSpace + 1
)

// Vocab names the tokenizer a generated model carries: the byte vocabulary
// of the tiny presets, or a real tokenizer taken over from llama.cpp's
// vocabulary-only GGUFs (see the package doc).
type Vocab string

const (
	// VocabBytes, the zero value, is the byte-level SentencePiece
	// vocabulary of VocabSize tokens.
	VocabBytes Vocab = ""
	// VocabLlama3 is Llama 3's BPE tokenizer, 128,256 tokens
	// (models/ggml-vocab-llama-bpe.gguf of llama.cpp v0.5.0).
	VocabLlama3 Vocab = "llama3"
	// VocabQwen35 is Qwen 3.5's BPE tokenizer, 151,936 tokens
	// (models/ggml-vocab-qwen35.gguf of llama.cpp v0.5.0).
	VocabQwen35 Vocab = "qwen35"
)

// vocabInfo is an embedded vocabulary: its file under vocab/ (zstd) and
// its token count, known without decompressing so that sizes and parameter
// counts stay cheap. TestVocabFiles holds the count to the file.
type vocabInfo struct {
	file string
	size int
}

var vocabs = map[Vocab]vocabInfo{
	VocabLlama3: {file: "ggml-vocab-llama-bpe.gguf", size: 128256},
	VocabQwen35: {file: "ggml-vocab-qwen35.gguf", size: 151936},
}

//go:embed vocab/ggml-vocab-llama-bpe.gguf.zst
var vocabLlama3Zst []byte

//go:embed vocab/ggml-vocab-qwen35.gguf.zst
var vocabQwen35Zst []byte

//go:embed vocab/SHA256SUMS
var vocabSums string

// compressed returns the embedded zstd bytes of a vocabulary.
func (v Vocab) compressed() []byte {
	switch v {
	case VocabLlama3:
		return vocabLlama3Zst
	case VocabQwen35:
		return vocabQwen35Zst
	}
	return nil
}

// Vocabularies lists the names Spec.Vocab may take besides VocabBytes ("").
func Vocabularies() []Vocab {
	out := make([]Vocab, 0, len(vocabs))
	for v := range vocabs {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// ParseVocab returns the vocabulary named s: "bytes" (or "") or one of
// Vocabularies.
func ParseVocab(s string) (Vocab, error) {
	if s == "" || s == "bytes" {
		return VocabBytes, nil
	}
	if _, ok := vocabs[Vocab(s)]; ok {
		return Vocab(s), nil
	}
	return "", fmt.Errorf("%w %q (known: bytes %v)", ErrVocab, s, Vocabularies())
}

// String returns the vocabulary's name, "bytes" for VocabBytes.
func (v Vocab) String() string {
	if v == VocabBytes {
		return "bytes"
	}
	return string(v)
}

// VocabSizeOf returns the number of tokens of a vocabulary, 0 for an
// unknown one.
func VocabSizeOf(v Vocab) int { return v.size() }

// size returns the number of tokens, 0 for an unknown vocabulary.
func (v Vocab) size() int {
	if v == VocabBytes {
		return VocabSize
	}
	return vocabs[v].size
}

// vocabKVs caches the tokenizer keys of each embedded vocabulary: decoding
// and parsing one takes a few tens of milliseconds and the result is
// immutable.
var vocabKVs sync.Map // Vocab → func() ([]gguf.KV, error)

// tokenizerKVs returns the tokenizer.* keys of an embedded vocabulary, in
// the file's order, after checking the file against vocab/SHA256SUMS and
// its token count against the table.
func (v Vocab) tokenizerKVs() ([]gguf.KV, error) {
	info, ok := vocabs[v]
	if !ok {
		return nil, fmt.Errorf("%w %q (known: bytes %v)", ErrVocab, string(v), Vocabularies())
	}
	f, _ := vocabKVs.LoadOrStore(v, sync.OnceValues(func() ([]gguf.KV, error) { return loadVocab(info, v.compressed()) }))
	return f.(func() ([]gguf.KV, error))()
}

func loadVocab(info vocabInfo, zst []byte) ([]gguf.KV, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("modelgen: vocabulary %s: %w", info.file, err)
	}
	defer dec.Close()
	raw, err := dec.DecodeAll(zst, nil)
	if err != nil {
		return nil, fmt.Errorf("modelgen: vocabulary %s: %w", info.file, err)
	}
	sum := sha256.Sum256(raw)
	if want := vocabSum(info.file); want != hex.EncodeToString(sum[:]) {
		return nil, fmt.Errorf("%w: %s: sha256 %x, want %s (vocab/SHA256SUMS)", ErrVocab, info.file, sum, want)
	}
	f, err := gguf.Read(bytes.NewReader(raw), int64(len(raw)))
	if err != nil {
		return nil, fmt.Errorf("modelgen: vocabulary %s: %w", info.file, err)
	}
	var kvs []gguf.KV
	for _, kv := range f.KV {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			kvs = append(kvs, kv)
		}
	}
	toks, _ := f.Value("tokenizer.ggml.tokens")
	if ts, ok := toks.([]string); !ok || len(ts) != info.size {
		return nil, fmt.Errorf("%w: %s: tokenizer.ggml.tokens is %T of %d, want %d strings", ErrVocab, info.file, toks, len(ts), info.size)
	}
	return kvs, nil
}

// vocabSum returns the SHA-256 vocab/SHA256SUMS lists for file, "" if none.
func vocabSum(file string) string {
	for _, line := range strings.Split(vocabSums, "\n") {
		if sum, name, ok := strings.Cut(line, "  "); ok && name == file {
			return sum
		}
	}
	return ""
}

// byteVocab returns the byte-level SPM vocabulary: <unk>, <s>, </s>, the
// 256 byte tokens and "▁". Text round-trips exactly through tokenize and
// detokenize (add_space_prefix is false), except that a literal "▁" in the
// input comes back as a space.
func byteVocab() (tokens []string, scores []float32, types []int32) {
	tokens = make([]string, VocabSize)
	scores = make([]float32, VocabSize)
	types = make([]int32, VocabSize)
	tokens[TokenUnk], types[TokenUnk] = "<unk>", tokUnknown
	tokens[TokenBOS], types[TokenBOS] = "<s>", tokControl
	tokens[TokenEOS], types[TokenEOS] = "</s>", tokControl
	for b := 0; b < 256; b++ {
		tokens[TokenByte0+b], types[TokenByte0+b] = fmt.Sprintf("<0x%02X>", b), tokByte
	}
	tokens[TokenSpace], types[TokenSpace] = "\u2581", tokNormal
	scores[TokenSpace] = -1
	return tokens, scores, types
}
