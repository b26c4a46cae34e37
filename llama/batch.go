package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// Batch is a reusable llama_batch of tokens. Its arrays live in C memory
// and are written through Go slices that view them, so filling a batch
// per token does not allocate. A Batch is used by one goroutine at a time.
type Batch struct {
	c      C.struct_llama_batch
	cap    int
	seqMax int

	tokens []C.llama_token
	pos    []C.llama_pos
	nSeq   []C.int32_t
	seqIDs [][]C.llama_seq_id
	logits []C.int8_t
}

// NewBatch allocates a batch for up to capacity tokens, each belonging to
// at most seqMax sequences.
func NewBatch(capacity, seqMax int) (*Batch, error) {
	if capacity <= 0 || seqMax <= 0 {
		return nil, fmt.Errorf("%w: capacity %d and seqMax %d must be positive", ErrInvalidBatch, capacity, seqMax)
	}
	c := C.llama_batch_init(C.int32_t(capacity), 0, C.int32_t(seqMax))
	if c.token == nil {
		return nil, &Error{Op: "NewBatch", Detail: "allocation failed"}
	}
	b := &Batch{c: c, cap: capacity, seqMax: seqMax}
	b.tokens = unsafe.Slice(c.token, capacity)
	b.pos = unsafe.Slice(c.pos, capacity)
	b.nSeq = unsafe.Slice(c.n_seq_id, capacity)
	b.logits = unsafe.Slice(c.logits, capacity)
	rows := unsafe.Slice(c.seq_id, capacity)
	b.seqIDs = make([][]C.llama_seq_id, capacity)
	for i := range rows {
		b.seqIDs[i] = unsafe.Slice(rows[i], seqMax)
	}
	return b, nil
}

// Cap is the number of tokens the batch can hold.
func (b *Batch) Cap() int { return b.cap }

// Len is the number of tokens in the batch.
func (b *Batch) Len() int { return int(b.c.n_tokens) }

// Clear empties the batch for reuse.
func (b *Batch) Clear() { b.c.n_tokens = 0 }

// Add appends token t at position pos of sequence seq. logits asks for the
// output (logits) of this position.
func (b *Batch) Add(t Token, pos int32, seq int32, logits bool) error {
	i := int(b.c.n_tokens)
	if i >= b.cap {
		return fmt.Errorf("%w: batch is full (%d tokens)", ErrInvalidBatch, b.cap)
	}
	b.tokens[i] = C.llama_token(t)
	b.pos[i] = C.llama_pos(pos)
	b.nSeq[i] = 1
	b.seqIDs[i][0] = C.llama_seq_id(seq)
	b.logits[i] = 0
	if logits {
		b.logits[i] = 1
	}
	b.c.n_tokens++
	return nil
}

// AddSeqs appends token t at position pos shared by several sequences.
func (b *Batch) AddSeqs(t Token, pos int32, seqs []int32, logits bool) error {
	i := int(b.c.n_tokens)
	if i >= b.cap {
		return fmt.Errorf("%w: batch is full (%d tokens)", ErrInvalidBatch, b.cap)
	}
	if len(seqs) == 0 || len(seqs) > b.seqMax {
		return fmt.Errorf("%w: %d sequence ids for a batch made for 1..%d", ErrInvalidBatch, len(seqs), b.seqMax)
	}
	b.tokens[i] = C.llama_token(t)
	b.pos[i] = C.llama_pos(pos)
	b.nSeq[i] = C.int32_t(len(seqs))
	for j, s := range seqs {
		b.seqIDs[i][j] = C.llama_seq_id(s)
	}
	b.logits[i] = 0
	if logits {
		b.logits[i] = 1
	}
	b.c.n_tokens++
	return nil
}

// AddSequence appends tokens at consecutive positions starting at pos0,
// asking for logits on the last one only — the usual shape of a prompt.
func (b *Batch) AddSequence(tokens []Token, pos0 int32, seq int32) error {
	if int(b.c.n_tokens)+len(tokens) > b.cap {
		return fmt.Errorf("%w: %d tokens do not fit (capacity %d, holding %d)", ErrInvalidBatch, len(tokens), b.cap, b.c.n_tokens)
	}
	for i, t := range tokens {
		if err := b.Add(t, pos0+int32(i), seq, i == len(tokens)-1); err != nil {
			return err
		}
	}
	return nil
}

// Close frees the batch. It is idempotent.
func (b *Batch) Close() error {
	if b == nil || b.c.token == nil {
		return nil
	}
	C.llama_batch_free(b.c)
	b.c = C.struct_llama_batch{}
	b.tokens, b.pos, b.nSeq, b.seqIDs, b.logits = nil, nil, nil, nil, nil
	return nil
}
