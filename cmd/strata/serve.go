package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/strata-llm/strata/bus"
	"github.com/strata-llm/strata/engine/server"
)

func init() {
	register(command{name: "serve", summary: "serve a GGUF model over an OpenAI-compatible HTTP API", run: runServe})
}

// handlerDrain is how long serve's handlers have to end their streams
// once the engine has stopped, before their connections are cut.
const handlerDrain = 2 * time.Second

func runServe(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	var ef engineFlags
	ef.register(fs, 4)
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address` (loopback by default; give 0.0.0.0:8080 to expose it)")
	maxTokens := fs.Int("n", 0, "default max tokens per request (0: until the sequence's context is full)")
	grace := fs.Duration("grace", 30*time.Second, "on SIGTERM, how long in-flight requests may finish before they are cancelled")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if *maxTokens < 0 {
		fmt.Fprintf(stderr, "strata serve: -n %d: want 0 (until the context is full) or more\n", *maxTokens)
		return errUsage
	}
	if ef.model == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "usage: strata serve -m FILE [-addr HOST:PORT] [-np N] [-c TOKENS] [-budget SIZE] [-lora FILE -lora-owner PERSONA] [-audit FILE]")
		fs.PrintDefaults()
		return errUsage
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	// The server answers from the start: 503 while the model loads, as
	// llama-server does, so that a client polling /health sees it coming.
	var handler atomic.Pointer[http.Handler]
	loading := http.Handler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"message":"Loading model","type":"unavailable_error","code":503}}`+"\n")
	}))
	handler.Store(&loading)
	srv := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*handler.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	log.Info("loading", "model", ef.model, "addr", ln.Addr())
	e, err := ef.open(ctx, bus.New(), stderr)
	if err != nil {
		srv.Close()
		return err
	}
	defer e.Close()
	api := server.New(e, server.Options{DefaultMaxTokens: *maxTokens, Logger: log})
	srv.RegisterOnShutdown(api.CloseEvents)
	ready := http.Handler(api)
	handler.Store(&ready)
	// The address printed is the one bound, so -addr :0 can be used by
	// scripts: they read the line.
	fmt.Fprintf(stdout, "strata serve: %s on http://%s (model %q, %d sequences of %d tokens)\n", ef.model, ln.Addr(), e.Name(), e.Parallel(), e.ContextSize())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	stop() // a second signal kills the process the default way
	log.Info("shutting down: finishing in-flight requests", "grace", *grace)
	sctx, cancel := context.WithTimeout(context.Background(), *grace)
	defer cancel()
	// The engine refuses new requests and finishes (or, after the grace
	// period, cancels) the running ones; their handlers then write their
	// last chunk and return, so the HTTP server's Shutdown finds its
	// connections idle. Shutdown stops accepting at once, but cuts the
	// connections only a moment after the engine is down: on the grace
	// period's own deadline it raced the handlers' last writes, and a
	// cancelled stream could end without its data: [DONE].
	hctx, hcancel := context.WithCancel(context.Background())
	defer hcancel()
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(hctx) }()
	eerr := e.Shutdown(sctx)
	drain := time.AfterFunc(handlerDrain, hcancel)
	defer drain.Stop()
	herr := <-done
	if errors.Is(herr, context.Canceled) {
		herr = srv.Close()
	}
	if err := errors.Join(eerr, herr); err != nil {
		log.Error("stopped", "engine", eerr, "http", herr)
		return err
	}
	log.Info("stopped")
	return nil
}
