//go:build !unix

package audit

// fsyncDir does nothing where a directory cannot be opened and fsynced
// through package os (Windows); there the file's name is as durable as the
// file system makes it.
func fsyncDir(string) error { return nil }
