package genome

import "testing"

func TestMapsScannerRuns(t *testing.T) {
	text := []byte(`55d0c0000000-55d0c0001000 r--p 00000000 fe:00 100 /usr/bin/x
7f0000000000-7f0000200000 r--s 00002000 fe:00 42 /m/model.gguf
7f0000200000-7f0000400000 r--s 00202000 fe:00 42 /m/model.gguf
7f0000400000-7f0000500000 rw-p 00000000 00:00 0
7f0000500000-7f0000600000 r--s 00000000 fe:00 42 /m/model.gguf
7f0000600000-7f0000700000 r--s 00200000 fe:00 42 /m/model.gguf
`)
	var s mapsScanner
	var got []fileRun
	if err := s.runs(text, func(r fileRun) { got = append(got, r) }); err != nil {
		t.Fatal(err)
	}
	want := []fileRun{
		{0x55d0c0000000, 0x55d0c0001000, 0, 0xfe, 0, 100},
		{0x7f0000000000, 0x7f0000400000, 0x2000, 0xfe, 0, 42},   // split VMAs, one run
		{0x7f0000500000, 0x7f0000600000, 0, 0xfe, 0, 42},        // offsets not contiguous:
		{0x7f0000600000, 0x7f0000700000, 0x200000, 0xfe, 0, 42}, // two runs
	}
	if len(got) != len(want) {
		t.Fatalf("got %d runs %+v, want %d", len(got), got, len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("run %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	for _, bad := range []string{"zz-10 r--s 0 fe:00 1 /x\n", "10-20 r--s 0 fe00 1 /x\n", "20-10 r--s 0 fe:00 1\n", "10-20 r--s 0 fe:00\n"} {
		if err := s.runs([]byte(bad), func(fileRun) {}); err == nil {
			t.Errorf("runs(%q): got nil error", bad)
		}
	}
}

// TestMapsScannerAllocations reads this process's real maps: it must
// find file runs, and not allocate once its buffer has grown.
func TestMapsScannerAllocations(t *testing.T) {
	var s mapsScanner
	text, err := s.read()
	if err != nil {
		t.Skip(err)
	}
	n := 0
	if err := s.runs(text, func(fileRun) { n++ }); err != nil || n == 0 {
		t.Fatalf("got %d runs, %v", n, err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		text, err := s.read()
		if err != nil {
			t.Fatal(err)
		}
		s.runs(text, func(fileRun) {})
	})
	// os.Open itself allocates (the *os.File); the scan must add nothing
	// per line.
	if allocs > 6 {
		t.Errorf("read+runs: %v allocations, want only os.Open's", allocs)
	}
}
