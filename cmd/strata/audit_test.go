package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strata-llm/strata/audit"
)

// auditLog writes a signed log of n entries and returns its path, its last
// hash and the public key.
func auditLog(t *testing.T, n int) (string, audit.Hash, string) {
	t.Helper()
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, &audit.Options{Sync: audit.SyncNone, Signer: priv, CheckpointEvery: 2})
	if err != nil {
		t.Fatal(err)
	}
	var last audit.Hash
	for i := range n {
		e, err := l.Append(audit.KindAccessDenied, map[string]int{"i": i})
		if err != nil {
			t.Fatal(err)
		}
		last = e.ChainHash
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path, last, hex.EncodeToString(priv.Public().(ed25519.PublicKey))
}

func TestAuditVerifyCommand(t *testing.T) {
	path, last, pub := auditLog(t, 5)
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")

	tampered := filepath.Join(t.TempDir(), "tampered.log")
	os.WriteFile(tampered, []byte(strings.Replace(string(data), `{"i":1}`, `{"i":7}`, 1)), 0o600)
	truncated := filepath.Join(t.TempDir(), "truncated.log")
	os.WriteFile(truncated, []byte(strings.Join(lines[:4], "")), 0o600)
	torn := filepath.Join(t.TempDir(), "torn.log")
	os.WriteFile(torn, data[:len(data)-20], 0o600)
	empty := filepath.Join(t.TempDir(), "empty.log")
	os.WriteFile(empty, nil, 0o600)

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  []string
	}{
		{"valid", []string{"verify", path}, 0, []string{"OK ", "5 entries", "last hash " + last.String()}},
		{"valid with key after file", []string{"verify", path, "-pubkey", pub}, 0, []string{"OK ", "3 signed checkpoints verified"}},
		{"valid with key before file", []string{"verify", "-pubkey", pub, path}, 0, []string{"OK "}},
		{"tampered", []string{"verify", tampered}, 1, []string{"FAIL", "line 2, seq 2: chain broken", "entries verified before it: 1"}},
		{"truncated, no key", []string{"verify", truncated}, 0, []string{"OK ", "4 entries"}},
		{"truncated, key", []string{"verify", truncated, "-pubkey", pub, "-checkpoints", audit.CheckpointPath(path)}, 1,
			[]string{"FAIL", "checkpoint covers seq 5 but the log ends at seq 4"}},
		{"torn", []string{"verify", torn}, 1, []string{"FAIL", "torn last line", "strata audit repair"}},
		{"missing file", []string{"verify", filepath.Join(t.TempDir(), "none.log")}, 1, nil},
		{"empty file", []string{"verify", empty}, 0, []string{"OK ", "0 entries"}},
		{"bad key", []string{"verify", path, "-pubkey", "zz"}, 1, nil},
		{"no file", []string{"verify"}, 2, nil},
		{"two files", []string{"verify", path, path}, 2, nil},
		{"unknown subcommand", []string{"frobnicate"}, 2, nil},
		{"no subcommand", nil, 2, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := run(append([]string{"audit"}, tt.args...), &out, &errOut)
			if code != tt.wantCode {
				t.Fatalf("exit code: got %d, want %d\nstdout: %s\nstderr: %s", code, tt.wantCode, out.String(), errOut.String())
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out.String(), want) {
					t.Errorf("stdout: got %q, want it to contain %q", out.String(), want)
				}
			}
		})
	}
}

func TestAuditRepairCommand(t *testing.T) {
	path, _, _ := auditLog(t, 3)
	data, _ := os.ReadFile(path)
	os.WriteFile(path, data[:len(data)-20], 0o600)
	var out, errOut bytes.Buffer
	if code := run([]string{"audit", "repair", path}, &out, &errOut); code != 0 {
		t.Fatalf("repair: got exit %d (%s), want 0", code, errOut.String())
	}
	if !strings.Contains(out.String(), "removed a torn last line") || !strings.Contains(out.String(), "2 entries") {
		t.Errorf("repair output: got %q", out.String())
	}
	out.Reset()
	if code := run([]string{"audit", "verify", path}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "OK ") {
		t.Errorf("verify after repair: got exit %d, %q, want 0 and OK", code, out.String())
	}
}
