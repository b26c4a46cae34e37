//go:build !unix

package genome

import "testing"

// alignedForeignMap needs mmap at a chosen address: a Unix test only.
func alignedForeignMap(tb testing.TB, p string, size int) []byte {
	tb.Skip("no mmap here")
	return nil
}
