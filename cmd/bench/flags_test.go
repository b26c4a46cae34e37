package main

import (
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-llm/strata/llama"
)

func TestIntRange(t *testing.T) {
	for _, tc := range []struct {
		in   string
		neg  bool
		want []int
		err  string
	}{
		{in: "512", want: []int{512}},
		{in: "128,256", want: []int{128, 256}},
		{in: "1-4", want: []int{1, 2, 3, 4}},
		{in: "0-512+128", want: []int{0, 128, 256, 384, 512}},
		{in: "64-512*2", want: []int{64, 128, 256, 512}},
		{in: "1-3,8", want: []int{1, 2, 3, 8}},
		{in: "-1,0,99", neg: true, want: []int{-1, 0, 99}},
		{in: "-1", err: "not a number or range"},
		{in: "4-1", err: "ends before it starts"},
		{in: "1-8*1", err: "does not advance"},
		{in: "0-8*2", err: "does not advance"},
		{in: "1-4+0", err: "does not advance"},
		{in: "a", err: "not a number or range"},
		{in: "1,,2", err: "not a number or range"},
		{in: "1-", err: "not a number or range"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := intRange(tc.in, tc.neg)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	for _, tc := range []struct {
		name  string
		args  string
		check func(t *testing.T, o *options)
	}{
		{"defaults", "-m a.gguf", func(t *testing.T, o *options) {
			want := defaults
			want.models = []string{"a.gguf"}
			if !reflect.DeepEqual(*o, want) {
				t.Errorf("got %+v, want %+v", *o, want)
			}
		}},
		{"lists and long names", "--model a.gguf,b.gguf -p 128,256 --n-gen 0 -t 1-4 -b 512 -ub 128,256 --n-depth 0,512", func(t *testing.T, o *options) {
			eq(t, "models", o.models, []string{"a.gguf", "b.gguf"})
			eq(t, "p", o.nPrompt, []int{128, 256})
			eq(t, "n", o.nGen, []int{0})
			eq(t, "t", o.threads, []int{1, 2, 3, 4})
			eq(t, "b", o.nBatch, []int{512})
			eq(t, "ub", o.nUbatch, []int{128, 256})
			eq(t, "d", o.nDepth, []int{0, 512})
		}},
		{"llama-bench's older -mmp", "-m a -mmp 0", func(t *testing.T, o *options) {
			if !o.noMmap {
				t.Error("-mmp 0 did not turn mmap off")
			}
		}},
		{"repeated flags append", "-m a -p 1 -p 2,3 -m b", func(t *testing.T, o *options) {
			eq(t, "p", o.nPrompt, []int{1, 2, 3})
			eq(t, "models", o.models, []string{"a", "b"})
		}},
		{"pg", "-m a -pg 512,128 -pg 0,32", func(t *testing.T, o *options) {
			eq(t, "pg", o.nPG, []pg{{512, 128}, {0, 32}})
		}},
		{"gpu flags", "-m a -ngl -1,0,99 -ncmoe 0-2 -sm none,row -mg 1 -dev none,CUDA0/CUDA1,auto", func(t *testing.T, o *options) {
			eq(t, "ngl", o.ngl, []int{-1, 0, 99})
			eq(t, "ncmoe", o.ncmoe, []int{0, 1, 2})
			eq(t, "sm", o.splitMode, []llama.SplitMode{llama.SplitNone, llama.SplitRow})
			eq(t, "mg", o.mainGPU, []int{1})
			eq(t, "dev", o.devices, []devices{{none: true}, {names: []string{"CUDA0", "CUDA1"}}, {auto: true}})
		}},
		{"fa values", "-m a -fa on,off,auto,1,0,-1", func(t *testing.T, o *options) {
			on, off, auto := llama.FlashAttentionOn, llama.FlashAttentionOff, llama.FlashAttentionAuto
			eq(t, "fa", o.flashAttn, []llama.FlashAttention{on, off, auto, on, off, auto})
		}},
		{"bare -fa is on (old bin/bench)", "-m a -fa -r 1", func(t *testing.T, o *options) {
			eq(t, "fa", o.flashAttn, []llama.FlashAttention{llama.FlashAttentionOn})
			eq(t, "r", o.reps, 1)
		}},
		{"bare -fa last", "-m a -fa", func(t *testing.T, o *options) {
			eq(t, "fa", o.flashAttn, []llama.FlashAttention{llama.FlashAttentionOn})
		}},
		{"-fa -1 is auto", "-m a -fa -1", func(t *testing.T, o *options) {
			eq(t, "fa", o.flashAttn, []llama.FlashAttention{llama.FlashAttentionAuto})
		}},
		{"ot groups", `-m a -ot blk\.0\.ffn_up_exps=CPU;output=CPU,,x=CPU`, func(t *testing.T, o *options) {
			want := []overrideGroup{
				{{Pattern: `blk\.0\.ffn_up_exps`, BufferType: "CPU"}, {Pattern: "output", BufferType: "CPU"}},
				nil,
				{{Pattern: "x", BufferType: "CPU"}},
			}
			eq(t, "ot", o.overrides, want)
		}},
		{"budget sweep with svg adds mmap first", "-m a -budget 1GiB,1.5GiB -svg s.svg", func(t *testing.T, o *options) {
			eq(t, "budget", o.budgets, []int64{0, 1 << 30, 3 << 29})
		}},
		{"budget sweep keeps an explicit mmap", "-m a -budget 1GiB,none -svg s.svg", func(t *testing.T, o *options) {
			eq(t, "budget", o.budgets, []int64{1 << 30, 0})
		}},
		{"read bandwidth", "-m a -read-bw 1.5GiB/s", func(t *testing.T, o *options) {
			eq(t, "read-bw", o.readBW, float64(3<<29))
		}},
		{"formats", "-m a -o jsonl -oe md", func(t *testing.T, o *options) {
			eq(t, "o", o.output, "jsonl")
			eq(t, "oe", o.outputErr, "md")
		}},
		{"list devices needs no model", "-list-devices", func(t *testing.T, o *options) {
			eq(t, "list", o.listDevices, true)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(strings.Fields(tc.args), io.Discard)
			if err != nil {
				t.Fatalf("parseFlags(%s): %v", tc.args, err)
			}
			tc.check(t, o)
		})
	}
}

func TestParseFlagsErrors(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"", "-m is required"},
		{"-m a -p x", `invalid value "x" for flag -p`},
		{"-m a -t 0", "-t must be positive"},
		{"-m a -b 0", "-b must be positive"},
		{"-m a -p 0 -n 0", "no test to run"},
		{"-m a -r 0", "-r must be positive"},
		{"-m a -pg 512", `"512" is not pp,tg`},
		{"-m a -pg 1,2,3", `"1,2,3" is not pp,tg`},
		{"-m a -fa maybe", `"maybe" is not on, off or auto`},
		{"-m a -sm diag", `"diag" is not none, layer, row or tensor`},
		{"-m a -dev ", "no devices specified"},
		{"-m a -dev CUDA0//CUDA1", "empty device name"},
		{"-m a -ot blk", `"blk" is not <tensor name pattern>=<buffer type>`},
		{"-m a -ot ffn_(=CPU", `pattern "ffn_("`},
		{"-m a -budget 2XB", `bad size "2XB"`},
		{"-m a -budget -1GiB", `bad size "-1GiB"`},
		{"-m a -o xml", `unknown output format "xml"`},
		{"-m a -oe yaml", `unknown output format "yaml"`},
		{"-m a -svg s.svg", "-svg plots a -budget sweep"},
		{"-m a -read-bw fast", `"fast" is not a bandwidth`},
		{"-m a -ctk q8_0", "-ctk is a llama-bench flag that bin/bench does not implement"},
		{"-m a --no-kv-offload 1", "--no-kv-offload is a llama-bench flag"},
		{"-m a extra", `unexpected arguments ["extra"]`},
		{"-m a -mmp 0,1", `want 0 or 1`},
		{"-m a -prefetch", "-prefetch reads experts ahead for -budget"},
		{"-m a -n 4 -trace " + os.TempDir(), "is a directory"},
		{"-m a -budget 1GiB -svg /no/such/dir/s.svg", "no directory /no/such/dir"},
		{"-m a -cmoe", "-cmoe is a llama-bench flag"},
	} {
		t.Run(tc.args, func(t *testing.T) {
			var stderr strings.Builder
			args := strings.Fields(tc.args)
			if strings.HasSuffix(tc.args, "-dev ") {
				args = append(args, "")
			}
			if _, err := parseFlags(args, &stderr); err == nil {
				t.Fatalf("parseFlags(%q): got nil error", tc.args)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("parseFlags(%q) said %q, want it to contain %q", tc.args, stderr.String(), tc.want)
			}
		})
	}
}

// TestInstances holds the product to llama-bench's: every combination,
// model parameters outermost, pp, tg then pg tests innermost, zero-token
// tests dropped.
func TestInstances(t *testing.T) {
	o, err := parseFlags(strings.Fields("-m a,b -p 0,64 -n 16 -pg 8,4 -t 1,2 -budget none,1GiB -d 0,32"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	insts := instances(o)
	// 2 models × 2 budgets × 2 threads × 2 depths × (pp64, tg16, pp8+tg4)
	if got, want := len(insts), 2*2*2*2*3; got != want {
		t.Fatalf("got %d instances, want %d", got, want)
	}
	var names []string
	for _, i := range insts[:6] {
		names = append(names, i.testName())
	}
	eq(t, "first tests", names, []string{"pp64", "tg16", "pp8+tg4", "pp64 @ d32", "tg16 @ d32", "pp8+tg4 @ d32"})
	first, last := insts[0], insts[len(insts)-1]
	if first.model != "a" || first.budget != 0 || first.threads != 1 || last.model != "b" || last.budget != 1<<30 || last.threads != 2 {
		t.Errorf("order: first %+v, last %+v", first, last)
	}
	// A model is reloaded only when its load parameters change: budgets
	// of the same size class share it, mmap and a budget do not.
	reloads := 0
	for k := 1; k < len(insts); k++ {
		if !insts[k].sameModel(insts[k-1]) {
			reloads++
		}
	}
	if reloads != 3 { // a mmap → a budget → b mmap → b budget
		t.Errorf("got %d model reloads, want 3", reloads)
	}
}

func TestOdometerEmpty(t *testing.T) {
	o := defaults
	o.models = nil
	if got := instances(&o); got != nil {
		t.Errorf("got %d instances of no models, want none", len(got))
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}
