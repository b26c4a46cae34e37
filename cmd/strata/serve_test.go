package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/strata-llm/strata/audit"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/modelgen"
)

// When the test binary is started with STRATA_MAIN=1 it is strata itself:
// the serve test runs the real command as a child process, so SIGTERM is
// real too.
func init() {
	if os.Getenv("STRATA_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
}

func tinyDense(t *testing.T) string {
	t.Helper()
	spec, err := modelgen.Preset("tiny-dense")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "tiny-dense.gguf")
	if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunEvents runs `strata run -json -events`: the summary counts the
// tokens asked for, and the bus events come out as JSON lines.
func TestRunEvents(t *testing.T) {
	path := tinyDense(t)
	var out, errw bytes.Buffer
	if code := run([]string{"run", "-m", path, "-p", "Hello", "-n", "5", "-greedy", "-json", "-events", "-t", "2", "-c", "128"}, &out, &errw); code != 0 {
		t.Fatalf("exit %d: %s", code, errw.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var sum runEvent
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Type != "summary" {
		t.Fatalf("last line %q: %v", lines[len(lines)-1], err)
	}
	if sum.GenTokens+strings.Count(sum.StopReason, "eog") == 0 || sum.GenTokens > 5 || sum.PromptTokens < 2 {
		t.Errorf("summary %+v", sum)
	}
	var keys []string
	for l := range strings.SplitSeq(strings.TrimSpace(errw.String()), "\n") {
		var ev busEvent
		if json.Unmarshal([]byte(l), &ev) == nil && ev.Key != "" {
			keys = append(keys, ev.Key)
		}
	}
	if len(keys) < 3 || keys[0] != "inference/llm.request" || keys[len(keys)-1] != "inference/llm.complete" {
		t.Errorf("events %v\nstderr: %s", keys, errw.String())
	}
}

// TestRunEngineFlags: -fa takes llama.cpp's modes and names a bad one;
// -backend names a folder without backends.
func TestRunEngineFlags(t *testing.T) {
	path := tinyDense(t)
	for _, fa := range []string{"on", "off", "auto"} {
		var out, errw bytes.Buffer
		if code := run([]string{"run", "-m", path, "-p", "Hi", "-n", "2", "-greedy", "-t", "2", "-c", "64", "-fa", fa}, &out, &errw); code != 0 {
			t.Errorf("-fa %s: exit %d: %s", fa, code, errw.String())
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-fa", "fast"}, `flash attention "fast"`},
		{[]string{"-backend", t.TempDir()}, "no ggml backend library"},
	} {
		var out, errw bytes.Buffer
		args := append([]string{"run", "-m", path, "-p", "Hi", "-n", "2"}, tc.args...)
		if code := run(args, &out, &errw); code == 0 || !strings.Contains(errw.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want a failure naming %q", tc.args, code, errw.String(), tc.want)
		}
	}
}

// TestRunInteractive chats through `strata run -i` as a real process, its
// stdin a pipe: each line is a turn, the second turn's prompt repeats the
// first turn and its reply, so the prompt cache holds at least the first
// turn's prompt; "/clear" forgets the conversation, so the third turn's
// prompt is the first's again; the end of input ends the run.
func TestRunInteractive(t *testing.T) {
	path := tinyDense(t)
	cmd := exec.Command(os.Args[0], "run", "-m", path, "-i", "-greedy", "-n", "6", "-t", "2", "-c", "512", "-system", "Be brief.")
	cmd.Env = append(os.Environ(), "STRATA_MAIN=1")
	cmd.Stdin = strings.NewReader("Hello\nAnd then?\n\n/clear\nHello\n")
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v: %s", err, errw.String())
	}
	type turn struct{ prompt, cached int }
	var turns []turn
	for l := range strings.SplitSeq(errw.String(), "\n") {
		var tn turn
		if _, err := fmt.Sscanf(l, "(prompt %d tokens, %d of them cached,", &tn.prompt, &tn.cached); err == nil {
			turns = append(turns, tn)
		}
	}
	if len(turns) != 3 || !strings.Contains(errw.String(), "(conversation cleared)") {
		t.Fatalf("want 3 turns and a clear, stderr:\n%s", errw.String())
	}
	if turns[0].cached != 0 || turns[1].cached < turns[0].prompt || turns[1].prompt <= turns[1].cached {
		t.Errorf("turns %+v: the second should reuse the whole first prompt", turns)
	}
	if turns[2].prompt != turns[0].prompt {
		t.Errorf("after /clear: %d prompt tokens, want the first turn's %d", turns[2].prompt, turns[0].prompt)
	}
	if out.Len() == 0 {
		t.Error("no replies on stdout")
	}
}

// TestServeSIGTERM starts `strata serve` as a real process, streams a
// request with curl's wire format, sends SIGTERM while a long request is
// in flight, and checks the stream ends cleanly, the process exits 0 and
// the audit log it kept verifies: with a grace period the request may
// finish in, and with one that cancels it.
func TestServeSIGTERM(t *testing.T) {
	for _, grace := range []string{"3s", "1ms"} {
		t.Run("grace="+grace, func(t *testing.T) { testServeSIGTERM(t, grace) })
	}
}

func testServeSIGTERM(t *testing.T, grace string) {
	path := tinyDense(t)
	logPath := filepath.Join(t.TempDir(), "audit.log")
	cmd := exec.Command(os.Args[0], "serve", "-m", path, "-addr", "127.0.0.1:0", "-np", "2", "-c", "2048", "-t", "2",
		"-audit", logPath, "-grace", grace)
	cmd.Env = append(os.Environ(), "STRATA_MAIN=1")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("no banner: %v\n%s", err, stderr.String())
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("banner %q", line)
	}
	url := strings.Fields(line[i:])[0]

	body := `{"messages":[{"role":"user","content":"Hi"}],"max_tokens":100000,"stream":true,"ignore_eos":true}`
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	first, err := br.ReadString('\n')
	if err != nil || !strings.HasPrefix(first, "data: {") {
		t.Fatalf("first line %q: %v", first, err)
	}
	t0 := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if !strings.HasSuffix(string(rest), "data: [DONE]\n\n") {
		t.Errorf("stream cut at SIGTERM did not end with [DONE]: ...%q", tail(string(rest), 200))
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve exited with %v after SIGTERM\n%s", err, stderr.String())
	}
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("shutdown took %v with a grace of %s", d, grace)
	}
	if _, err := audit.Verify(logPath); err != nil {
		t.Errorf("audit log after shutdown: %v", err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// TestServeLoadUsage: counts out of range are usage errors that say which
// flag, not a server that refuses every request or a panic.
func TestServeLoadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "-m", "x.gguf", "-n", "-5"}, "-n -5"},
		{[]string{"run", "-m", "x.gguf", "-n", "0"}, "-n 0"},
		{[]string{"run", "-m", "x.gguf", "-n", "-2"}, "-n -2"},
		{[]string{"load", "-n", "-2"}, "usage: strata load"},
		{[]string{"load", "-c", "0"}, "usage: strata load"},
		{[]string{"load", "-tokens", "1"}, "usage: strata load"},
	} {
		var out, errb bytes.Buffer
		if rc := run(tc.args, &out, &errb); rc != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("strata %v: exit %d, stderr %q; want exit 2 and %q", tc.args, rc, errb.String(), tc.want)
		}
	}
}

// TestVersionAndHelp: --version prints the build, and `strata help gen`
// prints gen's own usage.
func TestVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if rc := run([]string{"--version"}, &out, &errb); rc != 0 || !strings.HasPrefix(out.String(), "strata ") || !strings.Contains(out.String(), "llama.cpp: ") {
		t.Errorf("--version: exit %d, %q", rc, out.String())
	}
	out.Reset()
	errb.Reset()
	run([]string{"help", "gen"}, &out, &errb)
	if !strings.Contains(errb.String(), "strata gen") || !strings.Contains(errb.String(), "-preset") {
		t.Errorf("help gen: %q", errb.String())
	}
	for _, c := range []string{"gen", "run", "serve", "load", "inspect"} {
		if rc := run([]string{c, "-h"}, &out, &errb); rc != 0 {
			t.Errorf("%s -h: exit %d, want 0", c, rc)
		}
	}
	if rc := run([]string{"run", "-no-such-flag"}, &out, &errb); rc != 2 {
		t.Errorf("run -no-such-flag: exit %d, want 2", rc)
	}
}
