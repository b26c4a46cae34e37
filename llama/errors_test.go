package llama_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/strata-llm/strata/llama"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// TestSamplerParamErrors: a parameter out of range is named with the
// range it must be in, not dumped with the whole parameter struct.
func TestSamplerParamErrors(t *testing.T) {
	for _, tc := range []struct {
		p    llama.SamplerParams
		want string
	}{
		{llama.SamplerParams{Temperature: -1}, "temperature -1: want 0 or more"},
		{llama.SamplerParams{Temperature: 1, TopP: 2}, "top-p 2: want 0 to 1"},
		{llama.SamplerParams{MinP: -0.5}, "min-p -0.5"},
		{llama.SamplerParams{TopK: -3}, "top-k -3"},
	} {
		s, err := llama.NewSampler(tc.p)
		if err == nil {
			s.Close()
			t.Errorf("%+v: no error", tc.p)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "{") {
			t.Errorf("%+v: got %q, want it to say %q", tc.p, err, tc.want)
		}
	}
}
