package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// measureReadBW measures how fast path's disk serves random reads of
// chunk bytes (an expert page; 4 MiB when 0), the reads the genome makes
// when it pages an expert in. O_DIRECT bypasses the page cache, so what
// is already cached does not flatter the figure. It reads at least 16
// chunks and about 256 MiB or half a second, whichever comes first.
func measureReadBW(path string, chunk int64) (float64, error) {
	const align = 4096
	if chunk <= 0 {
		chunk = 4 << 20
	}
	chunk = min((chunk+align-1)/align*align, 64<<20)
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	slots := st.Size() / align
	if slots*align < chunk {
		return 0, fmt.Errorf("%s is smaller than one %d-byte read", path, chunk)
	}
	// An anonymous mapping is page-aligned, as O_DIRECT wants its buffer.
	buf, err := unix.Mmap(-1, 0, int(chunk), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return 0, err
	}
	defer unix.Munmap(buf)
	rng := rand.New(rand.NewPCG(3, 4))
	last := (st.Size() - chunk) / align // highest aligned start
	var total int64
	t0 := time.Now()
	for n := 0; n < 16 || (total < 256<<20 && time.Since(t0) < 500*time.Millisecond); n++ {
		off := rng.Int64N(last+1) * align
		k, err := f.ReadAt(buf, off)
		if err != nil && k == 0 {
			return 0, fmt.Errorf("read %d bytes at %d: %w", chunk, off, err)
		}
		total += int64(k)
	}
	d := time.Since(t0)
	if d <= 0 {
		return 0, fmt.Errorf("no time measured")
	}
	return float64(total) / d.Seconds(), nil
}
