//go:build unix

package audit

import (
	"errors"
	"os"
)

// fsyncDir fsyncs the directory dir. Creating a file makes its name an
// entry of the directory, and until the directory itself is fsynced a
// crash can lose that entry, and with it every fsynced byte of the file.
func fsyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
