//go:build !linux

package llama

// CHeapInUse reports false: only glibc's mallinfo2 is read (cheap_linux.go).
func CHeapInUse() (uint64, bool) { return 0, false }

func cHeapInUse() uint64 { return 0 }
