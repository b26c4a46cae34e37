package modelgen

import "errors"

var (
	// ErrUnknownPreset is returned by Preset for a name it does not know.
	ErrUnknownPreset = errors.New("modelgen: unknown preset")
	// ErrSpec is returned when a Spec's shape is invalid or does not suit
	// the chosen tensor type.
	ErrSpec = errors.New("modelgen: invalid spec")
	// ErrArch is returned when Spec.Arch names an architecture modelgen
	// does not write.
	ErrArch = errors.New("modelgen: unsupported architecture")
	// ErrType is returned when Options.Type is not F32, F16, Q8_0 or Q4_0,
	// when Options.Mix is not a known mix or comes with a Type, and by
	// ParseWeights for a name that is neither.
	ErrType = errors.New("modelgen: unsupported tensor type")
	// ErrVocab is returned when Spec.Vocab names no embedded vocabulary,
	// and when an embedded vocabulary does not match vocab/SHA256SUMS.
	ErrVocab = errors.New("modelgen: unknown vocabulary")
	// ErrRouter is returned when Spec.Router names no router design or
	// is set on a dense spec.
	ErrRouter = errors.New("modelgen: unknown router")
)
