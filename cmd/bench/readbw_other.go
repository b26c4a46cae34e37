//go:build !linux

package main

import "errors"

// measureReadBW is Linux-only (O_DIRECT); elsewhere give -read-bw.
func measureReadBW(string, int64, int) (float64, error) {
	return 0, errors.New("measuring needs O_DIRECT (Linux)")
}
