package routing

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/strata-llm/strata/gguf"
)

// Limits of the format, checked by Header.Validate and by Read before
// anything is allocated for a field.
const (
	maxString     = 1024
	maxExperts    = 1 << 16
	maxBlocks     = 1 << 16
	maxPages      = 1 << 22 // MoE layers × experts (DeepSeek-V3: 58 × 256)
	maxRowBytes   = 64 << 10
	maxChunkBytes = 1 << 20
)

// Layer is one MoE layer of a trace.
type Layer struct {
	// Index is the layer's number in the model (llama.cpp's il, the
	// "-<layer>" suffix of ffn_moe_topk).
	Index int
	// ExpertBytes is the size of one expert of this layer in the file:
	// its slices of ffn_gate_exps, ffn_up_exps and ffn_down_exps (0 when
	// not known). Byte-budget simulations need it.
	ExpertBytes int64
}

// Header describes the model a trace was recorded on.
type Header struct {
	Arch    string // general.architecture, e.g. "llama" or "qwen3moe"
	Model   string // general.name, or the file's base name
	Blocks  int    // the model's layer count (block_count), dense layers included
	Experts int    // experts per MoE layer
	Used    int    // experts each token is routed to, per layer
	Layers  []Layer
}

// width is the bytes of one expert id in a trace file.
func (h *Header) width() int {
	if h.Experts <= 256 {
		return 1
	}
	return 2
}

// RowLen is the number of expert ids in one token's routing:
// len(Layers) × Used.
func (h *Header) RowLen() int { return len(h.Layers) * h.Used }

// Validate reports whether h can head a trace: at least one MoE layer,
// layer indexes ascending below Blocks, 1 ≤ Used ≤ Experts, and the
// format's limits.
func (h *Header) Validate() error {
	if detail, sentinel := h.check(); sentinel != nil {
		return fmt.Errorf("%w: %s", sentinel, detail)
	}
	return nil
}

// check is Validate as a detail and a sentinel (ErrHeader or ErrLimit).
func (h *Header) check() (string, error) {
	switch {
	case len(h.Arch) > maxString || len(h.Model) > maxString:
		return fmt.Sprintf("architecture or model name longer than %d bytes", maxString), ErrLimit
	case h.Blocks < 1 || h.Blocks > maxBlocks:
		return fmt.Sprintf("%d blocks (want 1..%d)", h.Blocks, maxBlocks), ErrHeader
	case h.Experts < 1 || h.Experts > maxExperts:
		return fmt.Sprintf("%d experts (want 1..%d)", h.Experts, maxExperts), ErrHeader
	case h.Used < 1 || h.Used > h.Experts:
		return fmt.Sprintf("%d experts used of %d", h.Used, h.Experts), ErrHeader
	case len(h.Layers) < 1 || len(h.Layers) > h.Blocks:
		return fmt.Sprintf("%d MoE layers in a model of %d blocks", len(h.Layers), h.Blocks), ErrHeader
	case int64(len(h.Layers))*int64(h.Experts) > maxPages:
		// A replay keeps state per expert of every layer: bounded here,
		// not by the tokens the file holds.
		return fmt.Sprintf("%d MoE layers of %d experts, more than %d experts in all", len(h.Layers), h.Experts, maxPages), ErrLimit
	}
	for i, l := range h.Layers {
		if l.Index < 0 || l.Index >= h.Blocks || (i > 0 && l.Index <= h.Layers[i-1].Index) {
			return fmt.Sprintf("MoE layer %d has index %d (want ascending, below %d)", i, l.Index, h.Blocks), ErrHeader
		}
		if l.ExpertBytes < 0 {
			return fmt.Sprintf("layer %d: expert size %d bytes", l.Index, l.ExpertBytes), ErrHeader
		}
	}
	if n := h.RowLen() * h.width(); n > maxRowBytes {
		return fmt.Sprintf("one token's routing is %d bytes (at most %d)", n, maxRowBytes), ErrLimit
	}
	return "", nil
}

// HeaderFromGGUF describes the MoE model f: its MoE layers are those
// whose expert tensors exist (DeepSeek-style models lead with dense
// layers), each with the bytes of one expert.
func HeaderFromGGUF(f *gguf.File) (Header, error) {
	h := Header{Arch: f.Architecture(), Blocks: f.BlockCount(), Experts: f.ExpertCount(), Used: f.ExpertUsedCount()}
	if name, ok := f.String("general.name"); ok {
		h.Model = name
	} else {
		h.Model = filepath.Base(f.Path)
	}
	if h.Experts == 0 {
		return Header{}, fmt.Errorf("routing: %s: %w", f.Path, gguf.ErrNotMoE)
	}
	if h.Blocks > maxBlocks { // before walking them
		return Header{}, fmt.Errorf("routing: %s: %d blocks (want 1..%d): %w", f.Path, h.Blocks, maxBlocks, ErrHeader)
	}
	for l := range f.WalkBlocks() {
		rs, err := f.ExpertRanges(l, 0)
		if errors.Is(err, gguf.ErrNotFound) {
			continue // a dense layer
		}
		if err != nil {
			return Header{}, fmt.Errorf("routing: %s layer %d: %w", f.Path, l, err)
		}
		var n int64
		for _, r := range rs {
			n += int64(r.Len)
		}
		h.Layers = append(h.Layers, Layer{Index: l, ExpertBytes: n})
	}
	if err := h.Validate(); err != nil {
		return Header{}, fmt.Errorf("routing: %s: %w", f.Path, err)
	}
	return h, nil
}

// CycleBytes is the bytes of one token's experts over all MoE layers,
// Used experts of each layer's size: what a decode step pages through in
// turn (genome.WarmShare). It is 0 when a layer's expert size is unknown.
func (h *Header) CycleBytes() int64 {
	var n int64
	for _, l := range h.Layers {
		if l.ExpertBytes <= 0 {
			return 0
		}
		n += l.ExpertBytes * int64(h.Used)
	}
	return n
}

// Trace is a recorded routing in memory: the header and, for each token
// in decode order, Header.RowLen expert ids, layer-major. It is safe for
// concurrent reads once built; Append needs the caller's exclusion.
type Trace struct {
	Header
	ids []uint16
}

// NewTrace returns an empty trace with header h.
func NewTrace(h Header) (*Trace, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	h.Layers = append([]Layer(nil), h.Layers...)
	return &Trace{Header: h}, nil
}

// Tokens returns the number of tokens in t.
func (t *Trace) Tokens() int {
	if n := t.RowLen(); n > 0 {
		return len(t.ids) / n
	}
	return 0
}

// Routing returns the experts token chose in t.Layers[layer] (an index
// into Layers, not the model's layer number). The slice is t's own.
func (t *Trace) Routing(token, layer int) []uint16 {
	i := (token*len(t.Layers) + layer) * t.Used
	return t.ids[i : i+t.Used : i+t.Used]
}

// Append adds one token's routing: RowLen ids, layer-major, as a
// Writer takes them.
func (t *Trace) Append(ids []int32) error {
	if err := checkRow(&t.Header, ids, t.Tokens()); err != nil {
		return err
	}
	for _, e := range ids {
		t.ids = append(t.ids, uint16(e))
	}
	return nil
}

// checkRow validates one token's routing against h.
func checkRow(h *Header, ids []int32, token int) error {
	if len(ids) != h.RowLen() {
		return fmt.Errorf("%w: token %d has %d expert ids, want %d (%d layers × %d used)", ErrExpert, token, len(ids), h.RowLen(), len(h.Layers), h.Used)
	}
	for i, e := range ids {
		if e < 0 || int(e) >= h.Experts {
			return fmt.Errorf("%w: token %d, layer %d: expert %d of %d", ErrExpert, token, h.Layers[i/h.Used].Index, e, h.Experts)
		}
	}
	return nil
}
