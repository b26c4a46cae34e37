package modelgen

import "fmt"

// Token types of llama.cpp (enum llama_token_type).
const (
	tokNormal  = 1
	tokUnknown = 2
	tokControl = 3
	tokByte    = 6
)

// Fixed token ids of the generated vocabulary.
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
	// VocabSize is the size of the generated vocabulary.
	VocabSize = TokenSpace + 1
)

// vocab returns the byte-level SPM vocabulary: <unk>, <s>, </s>, the 256
// byte tokens and "▁". Text round-trips exactly through tokenize and
// detokenize (add_space_prefix is false), except that a literal "▁" in the
// input comes back as a space.
func vocab() (tokens []string, scores []float32, types []int32) {
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
