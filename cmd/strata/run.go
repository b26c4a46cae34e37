package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/strata-llm/strata/bus"
	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/llama"
)

func init() {
	register(command{name: "run", summary: "generate text from a prompt (or chat) with a GGUF model", run: runRun})
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
	TTFTMs           float64 `json:"ttft_ms,omitempty"`
}

// busEvent is one line of `strata run -events` output.
type busEvent struct {
	Key     string `json:"key"`
	Payload any    `json:"payload"`
}

// engineFlags are the flags run and serve share: how the Engine is opened.
type engineFlags struct {
	model, lora, budget, audit, persona string
	backend                             string
	threads, nctx, parallel, ngl        int
	flashAttn                           llama.FlashAttention
	loraScale                           float64
	verbose, prefetch, noCachePrompt    bool
}

func (f *engineFlags) register(fs interface {
	Func(string, string, func(string) error)
	StringVar(*string, string, string, string)
	IntVar(*int, string, int, string)
	Float64Var(*float64, string, float64, string)
	BoolVar(*bool, string, bool, string)
}, parallel int) {
	fs.StringVar(&f.model, "m", "", "GGUF model `file` (required)")
	fs.IntVar(&f.threads, "t", runtime.NumCPU(), "threads")
	fs.IntVar(&f.nctx, "c", 0, "context `tokens` per sequence (default 4096 or the model's training context if smaller)")
	fs.IntVar(&f.parallel, "np", parallel, "sequences decoded together (continuous batching)")
	fs.IntVar(&f.ngl, "ngl", 0, "layers to offload to the GPU (-1: all)")
	f.flashAttn = llama.FlashAttentionAuto
	fs.Func("fa", "flash attention: on, off or auto (default auto: on where every layer's device supports it, as llama-server)", func(s string) (err error) {
		f.flashAttn, err = llama.ParseFlashAttention(s)
		return err
	})
	fs.StringVar(&f.backend, "backend", os.Getenv("STRATA_BACKEND_PATH"), "load ggml backend libraries (libggml-cuda.so from `make cuda`) from this `dir`")
	fs.StringVar(&f.lora, "lora", "", "LoRA adapter `file`; requests name it \"lora\"")
	fs.Float64Var(&f.loraScale, "lora-scale", 1.0, "LoRA adapter scale")
	fs.StringVar(&f.persona, "lora-owner", "", "the `persona` that owns the -lora adapter (default: anyone may use it)")
	fs.StringVar(&f.budget, "budget", "", "page an MoE model's experts through the genome within this `size` (e.g. 2GiB)")
	fs.BoolVar(&f.prefetch, "prefetch", false, "with -budget: read each MoE layer's predicted experts ahead")
	fs.StringVar(&f.audit, "audit", "", "append access denials to this audit log `file`")
	fs.BoolVar(&f.noCachePrompt, "no-cache-prompt", false, "decode every prompt whole, never from a sequence's cached KV (clients sharing a persona could otherwise tell from cached_tokens and timings whether others' prompts began as theirs)")
	fs.BoolVar(&f.verbose, "v", false, "show llama.cpp's log")
}

// open opens the Engine the flags describe, on b.
func (f *engineFlags) open(ctx context.Context, b *bus.MessageBus, stderr io.Writer) (*engine.Engine, error) {
	reserveCPUs(f.threads)
	level := slog.LevelError
	if f.verbose {
		level = slog.LevelDebug
	}
	llama.SetLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})))
	cfg := engine.Config{Model: f.model, Threads: f.threads, ContextSize: f.nctx, Parallel: f.parallel, GPULayers: f.ngl, BackendDir: f.backend, FlashAttention: f.flashAttn, Bus: b, AuditLog: f.audit, NoPromptCache: f.noCachePrompt}
	if f.budget != "" {
		n, err := engine.ParseBytes(f.budget)
		if err != nil {
			return nil, err
		}
		cfg.Budget = n
		cfg.Prefetch = f.prefetch
	}
	if f.lora != "" {
		cfg.Adapters = []engine.AdapterSpec{{Name: "lora", Path: f.lora, Scale: float32(f.loraScale), Owner: f.persona}}
	}
	e, err := engine.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if w := e.Budget().MemoryCheck(); w != "" {
		fmt.Fprintf(stderr, "strata: warning: %s\n", w)
	}
	return e, nil
}

func runRun(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("run", stderr)
	var ef engineFlags
	ef.register(fs, 1)
	prompt := fs.String("p", "", "prompt text")
	chat := fs.Bool("chat", false, "send -p as a user message through the model's chat template")
	interactive := fs.Bool("i", false, "chat on the terminal: read user messages from stdin, one per line, keeping the conversation (\"/clear\" forgets it, \"/bye\" or the end of input ends); -p is the first")
	system := fs.String("system", "", "system message for -chat and -i")
	n := fs.Int("n", 64, "number of tokens to generate (-1: until the context is full)")
	seed := fs.Uint("seed", uint(engine.RandomSeed), "sampling seed (4294967295: a random one)")
	greedy := fs.Bool("greedy", false, "always pick the most likely token")
	ds := engine.DefaultSampling
	temp := fs.Float64("temp", shortest(ds.Temperature), "temperature")
	topK := fs.Int("top-k", ds.TopK, "top-k (0 disables)")
	topP := fs.Float64("top-p", shortest(ds.TopP), "top-p (1 disables)")
	minP := fs.Float64("min-p", shortest(ds.MinP), "min-p (0 disables)")
	repeat := fs.Float64("repeat-penalty", 1.0, "repetition penalty (1 disables)")
	persona := fs.String("persona", "", "the `persona` the request runs as")
	useLora := fs.Bool("use-lora", true, "apply the -lora adapter to the request")
	asJSON := fs.Bool("json", false, "print one JSON object per token and a summary")
	events := fs.Bool("events", false, "print the bus events (inference and genome) as JSON lines on stderr")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this `address` while running (page-ins carry layer/expert labels)")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if *n == 0 || *n < -1 {
		fmt.Fprintf(stderr, "strata run: -n %d: want a number of tokens, or -1 for until the context is full\n", *n)
		return errUsage
	}
	if *interactive && *asJSON {
		fmt.Fprintln(stderr, "strata run: -i and -json do not go together")
		return errUsage
	}
	if ef.model == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: strata run -m FILE [-p PROMPT] [-chat | -i] [-n N] [-seed S] [-greedy] [-json] [-events]")
		fs.PrintDefaults()
		return errUsage
	}
	maxTokens := max(*n, 0) // the engine's 0: until the context is full
	if *seed > uint(engine.RandomSeed) {
		return fmt.Errorf("-seed %d does not fit 32 bits", *seed)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *pprofAddr != "" {
		ln, err := net.Listen("tcp", *pprofAddr)
		if err != nil {
			return fmt.Errorf("-pprof: %w", err)
		}
		defer ln.Close()
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
		go http.Serve(ln, mux)
		fmt.Fprintf(stderr, "pprof on http://%s/debug/pprof/\n", ln.Addr())
	}

	b := bus.New()
	if *events {
		var mu sync.Mutex
		enc := json.NewEncoder(stderr)
		mod := bus.ModuleFuncs{ModuleName: "run-events", Artifact: func(a bus.Artifact) {
			mu.Lock()
			enc.Encode(busEvent{Key: a.Key, Payload: a.Payload})
			mu.Unlock()
		}}
		if _, err := b.SubscribeArtifact(bus.Prefix(""), mod); err != nil {
			return err
		}
	}
	e, err := ef.open(ctx, b, stderr)
	if err != nil {
		return err
	}
	defer e.Close()

	req := engine.Request{
		Persona: *persona, MaxTokens: maxTokens,
		Sampling: engine.Sampling{
			Temperature: float32(*temp), TopK: *topK, TopP: float32(*topP), MinP: float32(*minP),
			RepeatLastN: 64, RepeatPenalty: float32(*repeat), Seed: uint32(*seed),
		},
	}
	if *greedy {
		req.Sampling = engine.Sampling{}
	}
	if ef.lora != "" && *useLora {
		req.Adapter = "lora"
	}
	if *interactive {
		return chatLoop(ctx, e, req, *system, *prompt, os.Stdin, stdout, stderr)
	}
	switch {
	case *chat:
		if *system != "" {
			req.Messages = append(req.Messages, llama.ChatMessage{Role: "system", Content: *system})
		}
		req.Messages = append(req.Messages, llama.ChatMessage{Role: "user", Content: *prompt})
	case *prompt == "" && e.Model().Vocab().AddBOS():
		req.Tokens = []llama.Token{e.Model().Vocab().BOS()}
	default:
		req.Prompt = *prompt
	}
	st, err := e.Generate(ctx, req)
	if err != nil {
		if errors.Is(err, engine.ErrEmptyPrompt) {
			return errors.New("the prompt is empty and the model adds no BOS token; give -p")
		}
		return err
	}

	enc := json.NewEncoder(stdout)
	var text, piece []byte
	vocab := e.Model().Vocab()
	for d := range st.Deltas() {
		piece = d.AppendText(piece[:0])
		text = append(text, piece...)
		if *asJSON {
			if d.Token == llama.NullToken {
				continue
			}
			// The raw piece of the token, as before the engine held text
			// back for stop strings.
			raw, _ := vocab.Piece(d.Token, false)
			err = enc.Encode(runEvent{Type: "token", ID: d.Token, Piece: raw})
		} else {
			_, err = stdout.Write(piece)
		}
		if err != nil {
			st.Close()
			return err
		}
	}
	res := st.Result()
	if res.Err != nil && !errors.Is(res.Err, context.Canceled) {
		return res.Err
	}
	promptTPS := 0.0
	if res.PromptEval > 0 {
		promptTPS = float64(res.PromptTokens) / res.PromptEval.Seconds()
	}
	if *asJSON {
		return enc.Encode(runEvent{
			Type: "summary", Text: string(text), PromptTokens: res.PromptTokens, GenTokens: res.CompletionTokens,
			StopReason: string(res.StopReason), PromptTokensPerS: promptTPS, GenTokensPerS: res.TokensPerSecond(),
			TTFTMs: float64(res.QueueWait+res.PromptEval) / 1e6,
		})
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stderr, "prompt: %d tokens, %.1f tokens/s; generated: %d tokens, %.1f tokens/s (%s)\n",
		res.PromptTokens, promptTPS, res.CompletionTokens, res.TokensPerSecond(), res.StopReason)
	if res.StopReason == engine.StopLength && res.CompletionTokens < maxTokens {
		fmt.Fprintf(stderr, "strata run: warning: the context of %d tokens filled up before -n %d; raise -c\n", e.ContextSize(), *n)
	}
	return nil
}

// reserveCPUs leaves the cores llama.cpp decodes on to it: unless the
// user set GOMAXPROCS, Go gets the cores the decoding threads do not use,
// and at least one. ggml's worker threads spin at their barriers, so a Go
// thread running (or spinning for work) on one of their cores holds the
// whole matmul back: on the 2-core development machine, 2 decoding
// threads, one stream through strata serve ran at 34-35 tokens/s with
// GOMAXPROCS=2 and 42-43 with GOMAXPROCS=1 (bin/bench: 43).
func reserveCPUs(threads int) {
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	n := max(1, runtime.NumCPU()-threads+1)
	if n < runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(n)
	}
}

// chatLoop is run -i: a conversation read from in, one user message per
// line, each reply streamed to stdout as it is generated. Every turn sends
// the whole conversation through the chat template; the engine's prompt
// cache decodes only what the last turn added. The first message is
// first, when not empty.
func chatLoop(ctx context.Context, e *engine.Engine, base engine.Request, system, first string, in *os.File, stdout, stderr io.Writer) error {
	var history []llama.ChatMessage
	if system != "" {
		history = append(history, llama.ChatMessage{Role: "system", Content: system})
	}
	keep := len(history)
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	tty := false
	if fi, err := in.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
		tty = true
		fmt.Fprintln(stderr, `strata run: type a message and Enter; "/clear" forgets the conversation, "/bye" or Ctrl-D ends`)
	}
	for {
		line := first
		first = ""
		if line == "" {
			if tty {
				fmt.Fprint(stderr, ">>> ")
			}
			if !sc.Scan() {
				if err := sc.Err(); err != nil {
					return fmt.Errorf("reading the conversation: %w", err)
				}
				return nil
			}
			line = strings.TrimSpace(sc.Text())
		}
		switch line {
		case "":
			continue
		case "/bye":
			return nil
		case "/clear":
			history = history[:keep]
			fmt.Fprintln(stderr, "(conversation cleared)")
			continue
		}
		req := base
		req.Messages = append(slices.Clip(history), llama.ChatMessage{Role: "user", Content: line})
		st, err := e.Generate(ctx, req)
		if errors.Is(err, engine.ErrPromptTooLong) {
			fmt.Fprintf(stderr, "strata run: %v; \"/clear\" starts over (or raise -c)\n", err)
			continue
		}
		if err != nil {
			return err
		}
		var reply, piece []byte
		for d := range st.Deltas() {
			piece = d.AppendText(piece[:0])
			reply = append(reply, piece...)
			if _, err := stdout.Write(piece); err != nil {
				st.Close()
				return err
			}
		}
		fmt.Fprintln(stdout)
		res := st.Result()
		if res.Err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return res.Err
		}
		fmt.Fprintf(stderr, "(prompt %d tokens, %d of them cached, %.0f ms to the first token; %d tokens, %.1f tokens/s, %s)\n",
			res.PromptTokens, res.CachedTokens, float64(res.QueueWait+res.PromptEval)/1e6, res.CompletionTokens, res.TokensPerSecond(), res.StopReason)
		history = append(req.Messages, llama.ChatMessage{Role: "assistant", Content: string(reply)})
	}
}

// shortest is the float64 that prints as x does (0.95, not 0.949999988).
func shortest(x float32) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(float64(x), 'g', -1, 32), 64)
	return v
}
