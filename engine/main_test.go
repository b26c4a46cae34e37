package engine_test

import (
	"log/slog"
	"os"
	"testing"

	"github.com/strata-llm/strata/llama"
)

// TestMain keeps llama.cpp's warnings (such as the generated vocabulary's
// "special_eos_id is not in special_eog_ids") out of test and benchmark
// output, where they would break benchstat's parsing; errors still show.
func TestMain(m *testing.M) {
	llama.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	os.Exit(m.Run())
}
