package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// Token is a vocabulary token id.
type Token = int32

// NullToken is LLAMA_TOKEN_NULL: "no such token".
const NullToken Token = -1

// Vocab is a model's vocabulary. It is owned by its Model, valid until the
// model is closed, and safe for concurrent use.
type Vocab struct {
	c     *C.struct_llama_vocab
	model *Model
}

// Size is the number of tokens; 0 once the model is closed. (After the
// model's Close every Vocab method is safe: those returning an error
// return ErrClosed, the others zero values or NullToken.)
func (v *Vocab) Size() int {
	if v.c == nil {
		return 0
	}
	return int(C.llama_vocab_n_tokens(v.c))
}

// BOS, EOS and EOT return the special tokens, or NullToken.
func (v *Vocab) BOS() Token {
	if v.c == nil {
		return NullToken
	}
	return Token(C.llama_vocab_bos(v.c))
}

func (v *Vocab) EOS() Token {
	if v.c == nil {
		return NullToken
	}
	return Token(C.llama_vocab_eos(v.c))
}

func (v *Vocab) EOT() Token {
	if v.c == nil {
		return NullToken
	}
	return Token(C.llama_vocab_eot(v.c))
}

// AddBOS reports whether the model wants a BOS token at the start of a
// prompt.
func (v *Vocab) AddBOS() bool { return v.c != nil && bool(C.llama_vocab_get_add_bos(v.c)) }

// IsEOG reports whether t ends generation (EOS, EOT, or another EOG token).
func (v *Vocab) IsEOG(t Token) bool {
	return v.c != nil && bool(C.llama_vocab_is_eog(v.c, C.llama_token(t)))
}

// IsControl reports whether t is a control token.
func (v *Vocab) IsControl(t Token) bool {
	return v.c != nil && bool(C.llama_vocab_is_control(v.c, C.llama_token(t)))
}

// Text is the stored text of token t (for byte tokens, e.g. "<0x41>").
func (v *Vocab) Text(t Token) (string, error) {
	if err := v.check(t); err != nil {
		return "", err
	}
	return C.GoString(C.llama_vocab_get_text(v.c, C.llama_token(t))), nil
}

func (v *Vocab) check(t Token) error {
	if v.c == nil {
		return fmt.Errorf("llama: vocab: %w", ErrClosed)
	}
	if t < 0 || int(t) >= v.Size() {
		return fmt.Errorf("%w: %d (vocabulary has %d tokens)", ErrTokenOutOfRange, t, v.Size())
	}
	return nil
}

// Tokenize converts text to tokens. addSpecial adds BOS/EOS as the model
// is configured to; parseSpecial lets control-token text such as "<s>" map
// to the control token rather than to plain text.
func (v *Vocab) Tokenize(text string, addSpecial, parseSpecial bool) ([]Token, error) {
	return v.AppendTokens(nil, text, addSpecial, parseSpecial)
}

// AppendTokens is Tokenize appending to dst, so a caller can reuse a buffer.
func (v *Vocab) AppendTokens(dst []Token, text string, addSpecial, parseSpecial bool) ([]Token, error) {
	if v.c == nil {
		return dst, fmt.Errorf("llama: tokenize: %w", ErrClosed)
	}
	if len(text) > 1<<30 {
		return dst, fmt.Errorf("llama: tokenize: text of %d bytes is too long", len(text))
	}
	var ctext *C.char
	if len(text) > 0 {
		ctext = (*C.char)(unsafe.Pointer(unsafe.StringData(text)))
	}
	start := len(dst)
	room := len(text) + 2 // at most one token per byte, plus BOS/EOS
	for attempt := 0; attempt < 2; attempt++ {
		if cap(dst)-start < room {
			grown := make([]Token, start, start+room)
			copy(grown, dst)
			dst = grown
		}
		buf := dst[start:cap(dst)]
		var p *C.llama_token
		if len(buf) > 0 {
			p = (*C.llama_token)(unsafe.Pointer(&buf[0]))
		}
		r := C.strata_tokenize(v.c, ctext, C.int32_t(len(text)), p, C.int32_t(len(buf)), C.bool(addSpecial), C.bool(parseSpecial))
		if r.exc != 0 {
			return dst[:start], threw("Vocab.Tokenize", r.exc)
		}
		n := r.n
		if n >= 0 {
			return dst[:start+int(n)], nil
		}
		if n == C.INT32_MIN {
			return dst[:start], &Error{Op: "Vocab.Tokenize", Code: int(n), Detail: "token count overflows int32"}
		}
		room = int(-n)
	}
	return dst[:start], &Error{Op: "Vocab.Tokenize", Detail: "token count changed between calls"}
}

// threw is the error for a llama.cpp call that threw (guard.cpp): on a
// model that loaded, that is a vocabulary missing what its tokenizer
// needs, such as a byte token.
func threw(op string, exc C.int32_t) error {
	kind := "a C++ exception"
	switch exc {
	case 1:
		kind = "std::out_of_range"
	case 2:
		kind = "a std::exception"
	}
	return &Error{Op: op, Detail: "llama.cpp's tokenizer threw " + kind, Err: ErrBadVocab}
}

// Piece renders token t as the bytes it stands for. special renders
// control tokens as their text; otherwise they render as nothing.
func (v *Vocab) Piece(t Token, special bool) (string, error) {
	var buf [64]byte
	b, err := v.AppendPiece(buf[:0], t, special)
	return string(b), err
}

// AppendPiece is Piece appending to dst; with enough capacity it does not
// allocate, which is what a streaming decode loop wants.
func (v *Vocab) AppendPiece(dst []byte, t Token, special bool) ([]byte, error) {
	if err := v.check(t); err != nil {
		return dst, err
	}
	for attempt := 0; attempt < 2; attempt++ {
		if cap(dst)-len(dst) < 8 {
			grown := make([]byte, len(dst), len(dst)+64)
			copy(grown, dst)
			dst = grown
		}
		free := dst[len(dst):cap(dst)]
		r := C.strata_token_to_piece(v.c, C.llama_token(t), (*C.char)(unsafe.Pointer(&free[0])), C.int32_t(len(free)), 0, C.bool(special))
		if r.exc != 0 {
			return dst, threw("Vocab.Piece", r.exc)
		}
		n := r.n
		if n >= 0 {
			return dst[:len(dst)+int(n)], nil
		}
		grown := make([]byte, len(dst), len(dst)+int(-n))
		copy(grown, dst)
		dst = grown
	}
	return dst, &Error{Op: "Vocab.Piece", Detail: fmt.Sprintf("token %d", t)}
}

// Detokenize converts tokens back to text. removeSpecial drops BOS/EOS the
// model adds; unparseSpecial renders control tokens as text.
func (v *Vocab) Detokenize(tokens []Token, removeSpecial, unparseSpecial bool) (string, error) {
	if v.c == nil {
		return "", fmt.Errorf("llama: detokenize: %w", ErrClosed)
	}
	for _, t := range tokens {
		if err := v.check(t); err != nil {
			return "", err
		}
	}
	var p *C.llama_token
	if len(tokens) > 0 {
		p = (*C.llama_token)(unsafe.Pointer(&tokens[0]))
	}
	buf := make([]byte, len(tokens)*8+16)
	for attempt := 0; attempt < 2; attempt++ {
		r := C.strata_detokenize(v.c, p, C.int32_t(len(tokens)), (*C.char)(unsafe.Pointer(&buf[0])), C.int32_t(len(buf)), C.bool(removeSpecial), C.bool(unparseSpecial))
		if r.exc != 0 {
			return "", threw("Vocab.Detokenize", r.exc)
		}
		n := r.n
		if n >= 0 {
			return string(buf[:n]), nil
		}
		buf = make([]byte, int(-n)+1)
	}
	return "", &Error{Op: "Vocab.Detokenize", Detail: "output size changed between calls"}
}
