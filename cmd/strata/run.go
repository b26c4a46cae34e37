package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/llama"
)

func init() {
	register(command{name: "run", summary: "generate text from a prompt with a GGUF model", run: runRun})
}

// runEvent is one line of `strata run -json` output.
type runEvent struct {
	Type  string      `json:"type"` // "token" or "summary"
	ID    llama.Token `json:"id,omitempty"`
	Piece string      `json:"piece,omitempty"`

	Text             string  `json:"text,omitempty"`
	PromptTokens     int     `json:"prompt_tokens,omitempty"`
	GenTokens        int     `json:"gen_tokens,omitempty"`
	StopReason       string  `json:"stop_reason,omitempty"`
	PromptTokensPerS float64 `json:"prompt_tokens_per_s,omitempty"`
	GenTokensPerS    float64 `json:"gen_tokens_per_s,omitempty"`
	LlamaGenPerS     float64 `json:"llama_gen_tokens_per_s,omitempty"`
}

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	model := fs.String("m", "", "GGUF model `file` (required)")
	prompt := fs.String("p", "", "prompt text")
	n := fs.Int("n", 64, "number of tokens to generate")
	seed := fs.Uint("seed", 0xFFFFFFFF, "sampling seed (default random)")
	greedy := fs.Bool("greedy", false, "always pick the most likely token")
	temp := fs.Float64("temp", 0.8, "temperature")
	topK := fs.Int("top-k", 40, "top-k (0 disables)")
	topP := fs.Float64("top-p", 0.95, "top-p (1 disables)")
	minP := fs.Float64("min-p", 0.05, "min-p (0 disables)")
	repeat := fs.Float64("repeat-penalty", 1.0, "repetition penalty (1 disables)")
	threads := fs.Int("t", runtime.NumCPU(), "threads")
	nctx := fs.Int("c", 2048, "context size")
	lora := fs.String("lora", "", "LoRA adapter `file` to apply")
	loraScale := fs.Float64("lora-scale", 1.0, "LoRA adapter scale")
	ngl := fs.Int("ngl", 0, "layers to offload to the GPU (-1: all)")
	budget := fs.String("budget", "", "page an MoE model's experts through the genome within this `size` (e.g. 2GiB)")
	asJSON := fs.Bool("json", false, "print one JSON object per token and a summary")
	verbose := fs.Bool("v", false, "show llama.cpp's log")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *model == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: strata run -m FILE -p PROMPT [-n N] [-seed S] [-greedy] [-json]")
		fs.PrintDefaults()
		return errUsage
	}
	// llama.cpp's warnings (e.g. about a generated vocabulary) are noise
	// for a one-shot run; -v shows everything.
	level := slog.LevelError
	if *verbose {
		level = slog.LevelDebug
	}
	llama.SetLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	var budgetBytes int64
	if *budget != "" {
		n, err := engine.ParseBytes(*budget)
		if err != nil {
			return err
		}
		budgetBytes = n
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	mp := llama.ModelParams{GPULayers: *ngl}
	if budgetBytes > 0 {
		mp = engine.PagedExperts(mp) // experts stay in the file mapping the genome pages
	}
	m, err := llama.LoadModelContext(ctx, *model, mp)
	if err != nil {
		return err
	}
	defer m.Close()
	cp := llama.ContextParams{NCtx: *nctx, Threads: *threads}
	if budgetBytes > 0 {
		b, err := engine.NewBudget(ctx, m, budgetBytes)
		if err != nil {
			return err
		}
		defer b.Close() // before m.Close: defers run last-in first-out
		cp.Observer = b.Pager.Observer()
	}
	lctx, err := llama.NewContext(m, cp)
	if err != nil {
		return err
	}
	defer lctx.Close()
	if *lora != "" {
		a, err := m.LoadAdapter(*lora)
		if err != nil {
			return err
		}
		if err := lctx.SetAdapter(a, float32(*loraScale)); err != nil {
			return err
		}
	}
	sp := llama.SamplerParams{
		Greedy: *greedy, Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
		PenaltyLastN: 64, RepeatPenalty: float32(*repeat), Seed: uint32(*seed), Vocab: m.Vocab(),
	}
	smp, err := llama.NewSampler(sp)
	if err != nil {
		return err
	}
	defer smp.Close()
	gen, err := engine.NewGenerator(lctx, smp)
	if err != nil {
		return err
	}
	defer gen.Close()

	vocab := m.Vocab()
	toks, err := vocab.Tokenize(*prompt, true, false)
	if err != nil {
		return err
	}
	if len(toks) == 0 {
		return errors.New("the prompt is empty and the model adds no BOS token; give -p")
	}

	enc := json.NewEncoder(stdout)
	var text []byte
	var piece []byte
	var emitErr error
	st, err := gen.Generate(ctx, toks, *n, func(t llama.Token) bool {
		piece, emitErr = vocab.AppendPiece(piece[:0], t, false)
		if emitErr != nil {
			return false
		}
		text = append(text, piece...)
		if *asJSON {
			emitErr = enc.Encode(runEvent{Type: "token", ID: t, Piece: string(piece)})
		} else {
			_, emitErr = stdout.Write(piece)
		}
		return emitErr == nil
	})
	if emitErr != nil {
		return emitErr
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if *asJSON {
		return enc.Encode(runEvent{
			Type: "summary", Text: string(text), PromptTokens: st.PromptTokens, GenTokens: st.GenTokens,
			StopReason: st.StopReason, PromptTokensPerS: st.PromptTokensPerSecond(),
			GenTokensPerS: st.GenTokensPerSecond(), LlamaGenPerS: st.Perf.EvalTokensPerSecond(),
		})
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stderr, "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s (%s)\n",
		st.PromptTokens, st.PromptTokensPerSecond(), st.GenTokens, st.GenTokensPerSecond(), st.StopReason)
	return err
}
