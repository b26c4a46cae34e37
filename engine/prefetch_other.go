//go:build !linux

package engine

import "os"

// openRandom opens path; the read-around hint is Linux's.
func openRandom(path string) (*os.File, error) { return os.Open(path) }

// dropCached does nothing: the genome does not page on this platform.
func dropCached(f *os.File, off, n int64) error { return nil }
