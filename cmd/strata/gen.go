package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/modelgen"
)

func init() {
	register(command{
		name:    "gen",
		summary: "generate a GGUF model (and optionally a LoRA adapter) with seeded random weights",
		run:     runGen,
	})
}

func runGen(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("gen", stderr)
	preset := fs.String("preset", "tiny-dense", "model shape (-list describes them): "+strings.Join(modelgen.PresetNames(), ", "))
	typ := fs.String("type", "q8_0", "weight type: f32, f16, q8_0 or q4_0 for every matrix, or q4_k_m (llama-quantize's Q4_K_M mix)")
	seed := fs.Uint64("seed", 1, "random seed; the same seed gives a byte-identical file")
	out := fs.String("o", "", "output GGUF file (required)")
	lora := fs.String("lora", "", "also write a matching LoRA adapter to this file")
	rank := fs.Int("lora-rank", 8, "rank of the LoRA adapter")
	quiet := fs.Bool("q", false, "no progress on stderr")
	router := fs.String("router", "", "MoE router design instead of the preset's: realistic (calibrated to real MoE traces), uniform, or zipf (strongly skewed, the tiny presets')")
	vocab := fs.String("vocab", "", "vocabulary instead of the preset's: bytes (260 tokens), llama3 (128,256) or qwen35 (151,936)")
	list := fs.Bool("list", false, "list the presets: architecture, vocabulary, layers, experts and router, params and size at -type")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *list && fs.NArg() == 0 {
		opts, err := modelgen.ParseWeights(*typ)
		if err != nil {
			return err
		}
		return listPresets(stdout, opts)
	}
	if *out == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: strata gen -preset NAME -type TYPE -seed S [-router R] [-vocab V] -o FILE [-lora FILE -lora-rank R]\n       strata gen -list [-type TYPE]")
		fs.PrintDefaults()
		return errUsage
	}
	// What can be refused is refused before minutes of writing: a
	// directory in the way, the adapter over the model, a bad rank.
	for _, p := range []string{*out, *lora} {
		if st, err := os.Stat(p); p != "" && err == nil && st.IsDir() {
			return fmt.Errorf("%s is a directory; give a file name", p)
		}
	}
	if *lora != "" && filepath.Clean(*lora) == filepath.Clean(*out) {
		return fmt.Errorf("-lora %s would overwrite the model -o writes", *lora)
	}
	rankSet := false
	fs.Visit(func(f *flag.Flag) { rankSet = rankSet || f.Name == "lora-rank" })
	switch {
	case *lora != "" && *rank < 1:
		return fmt.Errorf("-lora-rank %d: want 1 or more", *rank)
	case *lora == "" && rankSet:
		return fmt.Errorf("-lora-rank without -lora: no adapter is written")
	}
	spec, err := modelgen.Preset(*preset)
	if err != nil {
		return err
	}
	if *router != "" {
		r, err := modelgen.ParseRouter(*router)
		if err != nil {
			return err
		}
		spec = spec.WithRouter(r)
	}
	if *vocab != "" {
		if spec.Vocab, err = modelgen.ParseVocab(*vocab); err != nil {
			return err
		}
	}
	opts, err := modelgen.ParseWeights(*typ)
	if err != nil {
		return err
	}
	opts.Seed = *seed
	if !*quiet {
		opts.Progress = progress(stderr, *out)
	}
	start := time.Now()
	if err := modelgen.Write(*out, spec, opts); err != nil {
		return err
	}
	size, _ := modelgen.SizeOf(spec, opts)
	fmt.Fprintf(stdout, "wrote %s: %s (%s) %s, vocab %s%s, %d params, %s in %.1fs\n", *out, spec.Name, spec.Architecture(), weights(spec, opts),
		spec.Vocab, routerNote(spec), spec.Params(), humanBytes(size), time.Since(start).Seconds())
	if *lora != "" {
		opts.Progress = nil
		if err := modelgen.WriteLoRA(*lora, spec, opts, *rank); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "wrote %s: LoRA rank %d on %s for %s\n", *lora, *rank, strings.Join(modelgen.LoRATargets, ", "), spec.Name)
	}
	return nil
}

// weights names how the file's matrices are typed: the type they all have,
// or for a mix its name and how many tensors got each type
// ("q4_k_m [q4_K 97, q6_K 17, f32 33]"), which shows at a glance what the
// mix chose for this shape (fallbacks included).
func weights(spec modelgen.Spec, opts modelgen.Options) string {
	if opts.Mix == modelgen.MixUniform {
		return opts.Type.String()
	}
	ts, err := modelgen.Tensors(spec, opts)
	if err != nil {
		return opts.Mix.String()
	}
	count := map[gguf.Type]int{}
	var order []gguf.Type
	for _, t := range ts {
		if count[t.Type] == 0 {
			order = append(order, t.Type)
		}
		count[t.Type]++
	}
	slices.SortStableFunc(order, func(a, b gguf.Type) int { return count[b] - count[a] })
	parts := make([]string, len(order))
	for i, t := range order {
		parts[i] = fmt.Sprintf("%s %d", t, count[t])
	}
	return fmt.Sprintf("%s [%s]", opts.Mix, strings.Join(parts, ", "))
}

// routerNote names a MoE spec's router design (", router realistic"), or
// nothing for a dense spec.
func routerNote(s modelgen.Spec) string {
	if s.Experts == 0 {
		return ""
	}
	return ", router " + s.Router.String()
}

// listPresets writes one line per preset: the architecture llama.cpp loads
// it as, which layers are dense, how its experts are arranged, and its size
// with opts' weights, so a user can pick a model without reading the source.
func listPresets(w io.Writer, opts modelgen.Options) error {
	name := opts.Type.String()
	if opts.Mix != modelgen.MixUniform {
		name = opts.Mix.String()
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "PRESET\tARCH\tVOCAB\tLAYERS\tEXPERTS\tPARAMS\tSIZE (%s)\n", name)
	for _, name := range modelgen.PresetNames() {
		s, err := modelgen.Preset(name)
		if err != nil {
			return err
		}
		size, err := modelgen.SizeOf(s, opts)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		layers := fmt.Sprint(s.Layers)
		if s.DenseLayers > 0 {
			layers += fmt.Sprintf(" (%d dense)", s.DenseLayers)
		}
		experts := "-"
		if s.Experts > 0 {
			experts = fmt.Sprintf("%d of n_ff %d, %d used", s.Experts, s.ExpertWidth(), s.ExpertsUsed)
			if s.SharedExperts > 0 {
				experts += fmt.Sprintf(", %d shared", s.SharedExperts)
			}
			experts += routerNote(s)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, s.Architecture(), s.Vocab, layers, experts, humanCount(s.Params()), humanBytes(size))
	}
	return tw.Flush()
}

// humanCount renders a parameter count as 658K, 1.84M or 5.81B.
func humanCount(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

// progress returns a callback reporting the write on w: on a terminal one
// line redrawn every half second, elsewhere (logs, CI) a line every five
// seconds; both end with a final line.
func progress(w io.Writer, name string) func(done, total int64) {
	var last time.Time
	start := time.Now()
	tty := isTerminal(w)
	every := 5 * time.Second
	if tty {
		every = 500 * time.Millisecond
	}
	return func(done, total int64) {
		if done < total && time.Since(last) < every {
			return
		}
		last = time.Now()
		rate := float64(done) / max(time.Since(start).Seconds(), 1e-9) / 1e6
		line := fmt.Sprintf("%s: %5.1f%% of %s (%.0f MB/s)", name, 100*float64(done)/float64(max(total, 1)), humanBytes(total), rate)
		switch {
		case tty && done < total:
			fmt.Fprintf(w, "\r%s", line)
		case tty:
			fmt.Fprintf(w, "\r%s\n", line)
		default:
			fmt.Fprintln(w, line)
		}
	}
}

// isTerminal reports whether w is a character device, i.e. a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
