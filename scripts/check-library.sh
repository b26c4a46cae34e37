#!/usr/bin/env bash
# check-library.sh — prove that a Go program importing
# github.com/strata-llm/strata/llama builds with plain `go build` and a C/C++
# compiler, as a library user's would: the committed tree (git archive of
# HEAD) is packed into a module zip by golang.org/x/mod/zip (the same rules
# the Go module proxy applies: vendor folders, nested modules and odd names
# left out), served from a file:// GOPROXY, required by a fresh module, and
# built with no CGO_* flags, then run: it generates a tiny model with
# modelgen, loads it and decodes a prompt.
#
#   scripts/check-library.sh        # takes a cold cgo build: ~5 min on 2 cores
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ver=v0.0.0-$(date -u +%Y%m%d%H%M%S)-$(git -C "$root" rev-parse --short=12 HEAD)
mod=github.com/strata-llm/strata

mkdir -p "$work/export" "$work/zipper" "$work/proxy/$mod/@v" "$work/app"
git -C "$root" archive HEAD | tar -x -C "$work/export"

cat >"$work/zipper/main.go" <<'GO'
package main

import (
	"os"

	"golang.org/x/mod/module"
	"golang.org/x/mod/zip"
)

func main() {
	f, err := os.Create(os.Args[3])
	if err != nil {
		panic(err)
	}
	if err := zip.CreateFromDir(f, module.Version{Path: os.Args[1], Version: os.Args[2]}, os.Args[4]); err != nil {
		panic(err)
	}
	if err := f.Close(); err != nil {
		panic(err)
	}
}
GO
(cd "$work/zipper" && go mod init zipper >/dev/null 2>&1 && go get golang.org/x/mod@latest >/dev/null 2>&1 && go mod tidy >/dev/null 2>&1)
(cd "$work/zipper" && go run . "$mod" "$ver" "$work/proxy/$mod/@v/$ver.zip" "$work/export")
cp "$work/export/go.mod" "$work/proxy/$mod/@v/$ver.mod"
printf '{"Version":"%s"}\n' "$ver" >"$work/proxy/$mod/@v/$ver.info"
echo "$ver" >"$work/proxy/$mod/@v/list"
echo "check-library.sh: module zip $(du -h "$work/proxy/$mod/@v/$ver.zip" | cut -f1)"

cat >"$work/app/main.go" <<'GO'
// A library user's program: generate a tiny model, load it, decode a
// prompt, print what llama.cpp compiled in and what it produced.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run() error {
	fmt.Println(llama.SystemInfo())
	path := filepath.Join(os.TempDir(), "check-library-tiny.gguf")
	defer os.Remove(path)
	spec, err := modelgen.Preset("tiny-dense")
	if err != nil {
		return err
	}
	if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 1}); err != nil {
		return err
	}
	m, err := llama.LoadModel(path, llama.ModelParams{})
	if err != nil {
		return err
	}
	defer m.Close()
	c, err := llama.NewContext(m, llama.ContextParams{NCtx: 64})
	if err != nil {
		return err
	}
	defer c.Close()
	b, err := llama.NewBatch(8, 1)
	if err != nil {
		return err
	}
	defer b.Close()
	b.AddSequence([]llama.Token{1, 2, 3}, 0, 0)
	if err := c.Decode(b); err != nil {
		return err
	}
	s, err := llama.NewSampler(llama.SamplerParams{Greedy: true})
	if err != nil {
		return err
	}
	defer s.Close()
	tok, err := s.Sample(c, -1)
	if err != nil {
		return err
	}
	fmt.Println(m.Description(), m.ParamCount(), "params; next token", tok)
	return nil
}
GO
cd "$work/app"
export GOPROXY="file://$work/proxy,$(go env GOPROXY)" GONOSUMDB="$mod" GOFLAGS=-modcacherw
export GOMODCACHE="$work/modcache"
unset CGO_CFLAGS CGO_CXXFLAGS CGO_CPPFLAGS
go mod init example.com/app >/dev/null 2>&1
go get "$mod@$ver" >/dev/null
# As a user would after writing the imports: go.sum gets the modules the
# imported packages need (modelgen's zstd, ...), not only Strata's.
go mod tidy >/dev/null
start=$(date +%s)
go build -o app .
echo "check-library.sh: plain go build took $(($(date +%s) - start)) s"
./app
echo "check-library.sh: ok"
