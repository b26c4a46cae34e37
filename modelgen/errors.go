package modelgen

import "errors"

var (
	// ErrUnknownPreset is returned by Preset for a name it does not know.
	ErrUnknownPreset = errors.New("modelgen: unknown preset")
	// ErrSpec is returned when a Spec's shape is invalid or does not suit
	// the chosen tensor type.
	ErrSpec = errors.New("modelgen: invalid spec")
	// ErrType is returned when Options.Type is not F32, F16, Q8_0 or Q4_0.
	ErrType = errors.New("modelgen: unsupported tensor type")
)
