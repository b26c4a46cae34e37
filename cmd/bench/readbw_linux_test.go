package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMeasureReadBW reads a file with one and with three readers at a time
// and gets a bandwidth from both; a file smaller than one read is refused
// by name.
func TestMeasureReadBW(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m")
	if err := os.WriteFile(path, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, par := range []int{1, 3} {
		bw, err := measureReadBW(path, 1<<20, par)
		if err != nil {
			if strings.Contains(err.Error(), "invalid argument") {
				t.Skipf("O_DIRECT refused on %s: %v", dir, err)
			}
			t.Fatal(err)
		}
		if bw <= 0 {
			t.Errorf("%d at a time: %g bytes/s", par, bw)
		}
	}
	small := filepath.Join(dir, "small")
	if err := os.WriteFile(small, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := measureReadBW(small, 1<<20, 3); err == nil || !strings.Contains(err.Error(), small) {
		t.Errorf("a file smaller than one read: %v, want an error naming it", err)
	}
}
