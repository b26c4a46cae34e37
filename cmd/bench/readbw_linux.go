package main

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// measureReadBW measures how fast path's disk serves random reads of
// chunk bytes (an expert page; 4 MiB when 0), the reads the genome makes
// when it pages an expert in, par of them at a time: a paged decode has
// up to engine.DefaultPrefetchReaders prefetch reads in flight beside its
// own, and a disk that serves several reads at once is only at its limit
// when asked for as many (this one, at 5.59 MiB: 1,548 MiB/s one at a
// time, 2,834 three at a time). O_DIRECT bypasses the page cache, so what
// is already cached does not flatter the figure. It reads at least 16
// chunks and about 256 MiB per reader or half a second, whichever comes
// first.
func measureReadBW(path string, chunk int64, par int) (float64, error) {
	const align = 4096
	if chunk <= 0 {
		chunk = 4 << 20
	}
	par = max(par, 1)
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
	last := (st.Size() - chunk) / align // highest aligned start
	var (
		total, reads atomic.Int64
		wg           sync.WaitGroup
		errs         = make([]error, par)
	)
	t0 := time.Now()
	for w := range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// An anonymous mapping is page-aligned, as O_DIRECT wants its
			// buffer.
			buf, err := unix.Mmap(-1, 0, int(chunk), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				errs[w] = err
				return
			}
			defer unix.Munmap(buf)
			rng := rand.New(rand.NewPCG(3, uint64(4+w)))
			for reads.Load() < 16 || (total.Load() < int64(par)<<28 && time.Since(t0) < 500*time.Millisecond) {
				off := rng.Int64N(last+1) * align
				k, err := f.ReadAt(buf, off)
				if err != nil && k == 0 {
					errs[w] = fmt.Errorf("read %d bytes at %d: %w", chunk, off, err)
					return
				}
				total.Add(int64(k))
				reads.Add(1)
			}
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	if d <= 0 {
		return 0, fmt.Errorf("no time measured")
	}
	return float64(total.Load()) / d.Seconds(), nil
}
