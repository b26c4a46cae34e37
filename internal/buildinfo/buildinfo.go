// Package buildinfo says which revision of Strata a binary was built from,
// for bench's build_commit and strata version.
package buildinfo

import "runtime/debug"

// commit is set by build.sh: -ldflags "-X
// github.com/strata-llm/strata/internal/buildinfo.commit=REV". build.sh
// turns Go's VCS stamping off (it fails in trees copied without .git).
var commit string

// Commit returns Strata's revision, seven hex digits: the one build.sh
// set, else the VCS revision go build stamped, else "unknown".
func Commit() string {
	if commit != "" {
		return commit
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 7 {
				return s.Value[:7]
			}
		}
	}
	return "unknown"
}
