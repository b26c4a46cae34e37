package genome

import (
	"errors"
	"fmt"

	"github.com/strata-llm/strata/gguf"
)

// GGUFSpec returns the ArtifactSpec of a parsed GGUF file: its path, and
// for a mixture-of-experts model an ExpertResolver over the stacked
// ffn_gate_exps/ffn_up_exps/ffn_down_exps tensors (gguf.File.ExpertRanges),
// so that ExpertPage(a, layer, expert) pages exactly that expert's slices.
func GGUFSpec(f *gguf.File) ArtifactSpec {
	spec := ArtifactSpec{Name: f.Path, Path: f.Path, Kind: ArtifactModel, Layers: f.WalkBlocks()}
	if n := f.ExpertCount(); n > 0 {
		spec.ExpertCount = n
		spec.Experts = func(layer, expert int) ([]Extent, error) {
			rs, err := f.ExpertRanges(layer, expert)
			switch {
			// ErrNotFound: a dense layer of a model whose other layers
			// hold experts (DeepSeek's leading layers).
			case errors.Is(err, gguf.ErrNotMoE), errors.Is(err, gguf.ErrNotFound):
				return nil, fmt.Errorf("%w: %w", ErrNoExperts, err)
			case errors.Is(err, gguf.ErrRange):
				return nil, fmt.Errorf("%w: %w", ErrBadPage, err)
			case err != nil:
				return nil, err
			}
			ex := make([]Extent, len(rs))
			for i, r := range rs {
				ex[i] = Extent{Off: int64(r.Off), Len: int64(r.Len)}
			}
			return ex, nil
		}
	}
	return spec
}

// RegisterGGUF parses the GGUF file at path and registers it as a model
// artifact with Whole, Range and (for MoE models) Expert pages.
func (m *Local) RegisterGGUF(path string) (ArtifactID, *gguf.File, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return ArtifactID{}, nil, fmt.Errorf("genome: %w", err)
	}
	id, err := m.RegisterArtifact(GGUFSpec(f))
	if err != nil {
		return ArtifactID{}, nil, err
	}
	return id, f, nil
}
