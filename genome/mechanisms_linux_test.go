package genome

import "testing"

// TestEvictionMechanisms re-measures, on every run, the kernel facts the
// Cold tier rests on (doc.go): which calls really drop a populated, shared
// file mapping from the page cache, as mincore sees it.
func TestEvictionMechanisms(t *testing.T) {
	const size = 4 * mib
	p := coldFile(t, "m", pattern(size, 2))
	f := openTB(t, p)
	mapTB := func() []byte {
		b, err := mapFile(f, size)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unmapFile(b) })
		if err := sysPopulate(sliceAddr(b), size); err != nil {
			t.Fatal(err)
		}
		return b
	}
	dontneed := func(b []byte) {
		if err := sysDontNeed(sliceAddr(b), size); err != nil {
			t.Fatal(err)
		}
	}
	fadvise := func() {
		if err := sysFadviseDontNeed(f, 0, size); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name     string
		maps     int
		act      func(ms [][]byte)
		resident int64
	}{
		{"MADV_DONTNEED alone", 1, func(ms [][]byte) { dontneed(ms[0]) }, size},
		{"POSIX_FADV_DONTNEED while mapped", 1, func(ms [][]byte) { fadvise() }, size},
		{"MADV_DONTNEED then POSIX_FADV_DONTNEED", 1, func(ms [][]byte) { dontneed(ms[0]); fadvise() }, 0},
		{"mlock'd: MADV_DONTNEED fails, fadvise keeps", 1, func(ms [][]byte) {
			if err := sysMlock(sliceAddr(ms[0]), size); err != nil {
				t.Fatal(err)
			}
			if err := sysDontNeed(sliceAddr(ms[0]), size); err == nil {
				t.Error("MADV_DONTNEED on locked pages: got nil error, want EINVAL")
			}
			fadvise()
		}, size},
		{"munlock, MADV_DONTNEED, POSIX_FADV_DONTNEED", 1, func(ms [][]byte) {
			sysMlock(sliceAddr(ms[0]), size)
			sysMunlock(sliceAddr(ms[0]), size)
			dontneed(ms[0])
			fadvise()
		}, 0},
		{"second mapping still maps: one DONTNEED is not enough", 2, func(ms [][]byte) { dontneed(ms[0]); fadvise() }, size},
		{"DONTNEED on every mapping", 2, func(ms [][]byte) { dontneed(ms[0]); dontneed(ms[1]); fadvise() }, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ms [][]byte
			for range tt.maps {
				ms = append(ms, mapTB())
			}
			tt.act(ms)
			got, err := Resident(ms[0])
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.resident {
				t.Fatalf("mincore: got %d resident, want %d", got, tt.resident)
			}
			for _, b := range ms {
				sysMunlock(sliceAddr(b), size)
				dontneed(b)
			}
			fadvise()
		})
	}
}

func TestKernelAtLeast(t *testing.T) {
	for _, tc := range []struct {
		release string
		want    bool
	}{
		{"6.18.0-1-amd64", true}, {"5.18.0", true}, {"5.17.15-generic", false},
		{"5.4.0", false}, {"10.0", true}, {"", false}, {"x.y", false},
	} {
		if got := kernelAtLeast(tc.release, 5, 18); got != tc.want {
			t.Errorf("kernelAtLeast(%q, 5, 18) = %v, want %v", tc.release, got, tc.want)
		}
	}
	if !hugeFaultReads {
		t.Log("this kernel predates 5.18: page-ins read no whole folios")
	}
}
