package llama_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/strata-llm/strata/llama"
)

func TestLogLevels(t *testing.T) {
	var buf bytes.Buffer
	llama.SetLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn})))
	t.Cleanup(func() { llama.SetLogger(nil) })

	// A debug line in two fragments is dropped whole, its continuation
	// too; the warning after it is a line of its own.
	llama.LogFragment(1, "graph ")
	llama.LogFragment(5, "reused\n")
	llama.LogFragment(3, "low memory\n")
	llama.LogFragment(2, "loaded\n")
	if got := buf.String(); strings.Contains(got, "graph") || strings.Contains(got, "reused") || strings.Contains(got, "loaded") || !strings.Contains(got, "low memory") {
		t.Errorf("at level WARN the log holds %q, want the warning alone", got)
	}
	// Dropped lines cost nothing: a GPU backend logs one per token.
	if n := testing.AllocsPerRun(100, func() { llama.LogFragment(1, "CUDA graph reused\n") }); n != 0 {
		t.Errorf("a dropped debug line allocated %v times, want 0", n)
	}

	buf.Reset()
	llama.SetLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: llama.LevelTrace})))
	llama.LogFragment(1, "graph ")
	llama.LogFragment(5, "reused\n")
	if got := buf.String(); !strings.Contains(got, "graph reused") {
		t.Errorf("at level TRACE the log holds %q, want the debug line whole", got)
	}
}
