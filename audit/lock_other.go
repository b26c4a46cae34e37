//go:build !unix

package audit

import "os"

// lockFile is a no-op where flock is unavailable; callers must not open one
// log from two writers.
func lockFile(*os.File) (func() error, error) { return func() error { return nil }, nil }
