// Package server is Strata's HTTP front end, `strata serve`: an
// OpenAI-compatible API over an engine.Engine (chat completions and
// completions, streamed as server-sent events or whole), the live bus
// events, Prometheus metrics and pprof.
//
//	POST /v1/chat/completions   chat, with the model's chat template
//	POST /v1/completions        raw text completion
//	GET  /v1/models             the one model served
//	GET  /health                200 once the model is loaded
//	GET  /v1/events?select=…    bus events as server-sent events
//	GET  /metrics               Prometheus text format
//	GET  /debug/pprof/          profiles, the genome's own among them
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strata-llm/strata/engine"
)

// Options configures a Server. Zero fields take the defaults their
// comments give.
type Options struct {
	// MaxBodyBytes bounds a request body; larger ones get 413. Default 8 MiB.
	MaxBodyBytes int64
	// DefaultMaxTokens bounds generation when a request sets no
	// max_tokens; 0 means until the sequence's context is full, as
	// llama-server does.
	DefaultMaxTokens int
	// EventBuffer is how many events a /v1/events client may fall behind
	// before events are dropped for it (and counted in a comment line).
	// Default 1024.
	EventBuffer int
	// Logger receives one line per request; nil discards them.
	Logger *slog.Logger
}

// Server serves an Engine over HTTP. It is safe for concurrent use.
type Server struct {
	e       *engine.Engine
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	metrics *metrics
	created int64
	streams atomic.Int64  // open /v1/events streams
	quit    chan struct{} // closed by CloseEvents
	quitMu  sync.Once
}

// CloseEvents ends every /v1/events stream, which otherwise never goes
// idle; register it with http.Server.RegisterOnShutdown.
func (s *Server) CloseEvents() { s.quitMu.Do(func() { close(s.quit) }) }

// New returns a Server for e.
func New(e *engine.Engine, opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.EventBuffer <= 0 {
		opts.EventBuffer = 1024
	}
	s := &Server{e: e, opts: opts, log: opts.Logger, mux: http.NewServeMux(), created: time.Now().Unix(), quit: make(chan struct{})}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.metrics = newMetrics(e, s)
	s.mux.HandleFunc("POST /v1/chat/completions", s.chat)
	s.mux.HandleFunc("POST /v1/completions", s.completions)
	s.mux.HandleFunc("GET /v1/models", s.models)
	s.mux.HandleFunc("GET /health", s.health)
	s.mux.HandleFunc("GET /v1/events", s.events)
	s.mux.Handle("GET /metrics", s.metrics.handler())
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found_error", "", fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path))
	})
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	m := s.e.Model()
	writeJSON(w, http.StatusOK, modelList{Object: "list", Data: []modelInfo{{
		ID: s.e.Name(), Object: "model", Created: s.created, OwnedBy: "strata",
		Meta: map[string]any{
			"n_ctx_seq": s.e.ContextSize(), "n_parallel": s.e.Parallel(), "n_params": m.ParamCount(),
			"size": m.Size(), "description": m.Description(),
		},
	}}})
}

// decode reads a JSON body into v, answering 413 or 400 itself; it
// reports whether the handler should go on.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body := http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request_error", "", fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
		case errors.Is(err, io.EOF):
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "empty request body")
		default:
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "invalid JSON: "+err.Error())
		}
		return false
	}
	return true
}

// request turns the common fields into an engine request, or writes the
// error and returns false.
func (s *Server) request(w http.ResponseWriter, r *http.Request, model string, c *common) (engine.Request, bool) {
	bad := func(param, msg string) (engine.Request, bool) {
		writeError(w, http.StatusBadRequest, "invalid_request_error", param, msg)
		return engine.Request{}, false
	}
	if model != "" && model != s.e.Name() {
		writeError(w, http.StatusNotFound, "invalid_request_error", "model", fmt.Sprintf("the model %q does not exist; this server serves %q", model, s.e.Name()))
		return engine.Request{}, false
	}
	if c.N != nil && *c.N != 1 {
		return bad("n", "only n=1 is supported")
	}
	if l := strings.TrimSpace(string(c.Logprobs)); l != "" && l != "null" && l != "false" && l != "0" {
		return bad("logprobs", "logprobs are not supported by this server")
	}
	if c.TopLogprobs != nil && *c.TopLogprobs != 0 {
		return bad("top_logprobs", "logprobs are not supported by this server")
	}
	req := engine.Request{Stop: c.Stop, Adapter: c.Adapter, MaxTokens: s.opts.DefaultMaxTokens, IgnoreEOS: c.IgnoreEOS,
		NoPromptCache: c.CachePrompt != nil && !*c.CachePrompt}
	req.Persona = r.Header.Get("X-Strata-Persona")
	if req.Persona == "" {
		req.Persona = c.Persona
	}
	for _, m := range []*int{c.MaxTokens, c.MaxCompletionTokens} {
		if m != nil {
			if *m < 1 {
				return bad("max_tokens", fmt.Sprintf("max_tokens must be at least 1, got %d", *m))
			}
			req.MaxTokens = *m
		}
	}
	// What a request leaves out is llama-server's default, not OpenAI's
	// (temperature 1 over every token of the vocabulary: a user of a GGUF
	// model expects llama.cpp's sampling, and on Llama 3's 128,256 tokens
	// a draw among all of them costs 1.1 ms where top-k 40 costs 0.09,
	// BenchmarkSample).
	sp := engine.DefaultSampling
	if c.Temperature != nil {
		if *c.Temperature < 0 || *c.Temperature > 2 {
			return bad("temperature", "temperature must be between 0 and 2")
		}
		sp.Temperature = *c.Temperature
	}
	if c.TopP != nil {
		if *c.TopP < 0 || *c.TopP > 1 {
			return bad("top_p", "top_p must be between 0 and 1")
		}
		sp.TopP = *c.TopP
	}
	if c.TopK != nil {
		if *c.TopK < 0 {
			return bad("top_k", "top_k must not be negative")
		}
		sp.TopK = *c.TopK
	}
	if c.MinP != nil {
		if *c.MinP < 0 || *c.MinP > 1 {
			return bad("min_p", "min_p must be between 0 and 1")
		}
		sp.MinP = *c.MinP
	}
	if c.Seed != nil {
		if *c.Seed < 0 || *c.Seed >= math.MaxUint32 {
			return bad("seed", fmt.Sprintf("seed must be in [0, %d)", uint32(math.MaxUint32)))
		}
		sp.Seed = uint32(*c.Seed)
	}
	for _, p := range []struct {
		name string
		v    *float32
		dst  *float32
	}{{"frequency_penalty", c.FrequencyPenalty, &sp.FrequencyPenalty}, {"presence_penalty", c.PresencePenalty, &sp.PresencePenalty}} {
		if p.v != nil {
			if *p.v < -2 || *p.v > 2 {
				return bad(p.name, p.name+" must be between -2 and 2")
			}
			*p.dst = *p.v
			sp.RepeatLastN = 64
		}
	}
	req.Sampling = sp
	return req, true
}

func (s *Server) chat(w http.ResponseWriter, r *http.Request) {
	var in chatRequest
	if !s.decode(w, r, &in) {
		return
	}
	if param, msg := in.unsupported(); param != "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", param, msg)
		return
	}
	req, ok := s.request(w, r, in.Model, &in.common)
	if !ok {
		return
	}
	msgs, err := toMessages(in.Messages)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "messages", err.Error())
		return
	}
	req.Messages = msgs
	s.run(w, r, req, &in.common, true, "")
}

func (s *Server) completions(w http.ResponseWriter, r *http.Request) {
	var in completionRequest
	if !s.decode(w, r, &in) {
		return
	}
	req, ok := s.request(w, r, in.Model, &in.common)
	if !ok {
		return
	}
	prompt, err := promptText(in.Prompt)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "prompt", err.Error())
		return
	}
	if prompt == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "prompt", "prompt is empty")
		return
	}
	req.Prompt = prompt
	echo := ""
	if in.Echo {
		echo = prompt
	}
	s.run(w, r, req, &in.common, false, echo)
}

// run generates req and writes the answer: whole, or streamed as
// server-sent events ending in "data: [DONE]". A client that goes away
// cancels the request through r's context. A completion with echo set
// starts its text with the prompt (echo holds it), as OpenAI's does.
func (s *Server) run(w http.ResponseWriter, r *http.Request, req engine.Request, c *common, chat bool, echo string) {
	st, err := s.e.Generate(r.Context(), req)
	if err != nil {
		param := "prompt"
		if chat {
			param = "messages"
		}
		s.generateError(w, err, param)
		return
	}
	s.metrics.requests.Inc()
	id := st.ID()
	prefix, object := "cmpl-", "text_completion"
	if chat {
		prefix, object = "chatcmpl-", "chat.completion"
	}
	rid := prefix + strings.ReplaceAll(id.String(), "-", "")
	created := time.Now().Unix()
	model := s.e.Name()

	if !c.Stream {
		text, res := st.Text()
		text = echo + text
		s.observe(res)
		if res.StopReason == engine.StopError || res.StopReason == engine.StopCancelled {
			s.resultError(w, res)
			return
		}
		fr := finishReason(res.StopReason)
		u := usageOf(res)
		if chat {
			writeJSON(w, http.StatusOK, chatResponse{ID: rid, Object: object, Created: created, Model: model,
				Choices: []chatChoice{{Message: &chatOut{Role: "assistant", Content: &text}, FinishReason: &fr}}, Usage: u, Timings: timingsOf(res)})
		} else {
			writeJSON(w, http.StatusOK, completionResponse{ID: rid, Object: object, Created: created, Model: model,
				Choices: []textChoice{{Text: text, FinishReason: &fr}}, Usage: u, Timings: timingsOf(res)})
		}
		s.log.Info("request", "id", id, "stop", res.StopReason, "prompt", res.PromptTokens, "completion", res.CompletionTokens, "total", res.Total)
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	sse := &sseWriter{w: w, rc: rc}
	if chat {
		object = "chat.completion.chunk"
		sse.json(chatResponse{ID: rid, Object: object, Created: created, Model: model,
			Choices: []chatChoice{{Delta: &chatOut{Role: "assistant", Content: new(string)}}}})
	} else if echo != "" {
		sse.json(completionResponse{ID: rid, Object: object, Created: created, Model: model, Choices: []textChoice{{Text: echo}}})
	}
	var buf []byte
	for d := range st.Deltas() {
		buf = d.AppendText(buf[:0])
		if len(buf) == 0 {
			continue
		}
		text := string(buf)
		if chat {
			sse.json(chatResponse{ID: rid, Object: object, Created: created, Model: model, Choices: []chatChoice{{Delta: &chatOut{Content: &text}}}})
		} else {
			sse.json(completionResponse{ID: rid, Object: object, Created: created, Model: model, Choices: []textChoice{{Text: text}}})
		}
		if sse.err != nil {
			st.Close()
			break
		}
	}
	res := st.Result()
	s.observe(res)
	if sse.err != nil {
		return
	}
	if res.StopReason == engine.StopError || (res.StopReason == engine.StopCancelled && r.Context().Err() == nil) {
		// Headers are sent; an error event is the best a stream can do.
		sse.json(apiError{Error: errorBody(res.Err.Error(), "server_error", "", "")})
		sse.done()
		return
	}
	fr := finishReason(res.StopReason)
	var u *usage
	if c.StreamOptions != nil && c.StreamOptions.IncludeUsage {
		u = usageOf(res)
	}
	if chat {
		sse.json(chatResponse{ID: rid, Object: object, Created: created, Model: model, Choices: []chatChoice{{Delta: &chatOut{}, FinishReason: &fr}}, Timings: timingsOf(res)})
		if u != nil {
			sse.json(chatResponse{ID: rid, Object: object, Created: created, Model: model, Choices: []chatChoice{}, Usage: u})
		}
	} else {
		sse.json(completionResponse{ID: rid, Object: object, Created: created, Model: model, Choices: []textChoice{{FinishReason: &fr}}, Timings: timingsOf(res)})
		if u != nil {
			sse.json(completionResponse{ID: rid, Object: object, Created: created, Model: model, Choices: []textChoice{}, Usage: u})
		}
	}
	sse.done()
	s.log.Info("request", "id", id, "stream", true, "stop", res.StopReason, "prompt", res.PromptTokens, "completion", res.CompletionTokens, "total", res.Total)
}

// observe records a finished request in the metrics.
func (s *Server) observe(res engine.Result) {
	s.metrics.finished(res)
}

func finishReason(r engine.StopReason) string {
	switch r {
	case engine.StopLength:
		return "length"
	default:
		return "stop"
	}
}

// usageOf is a request's usage as OpenAI's API gives it.
func usageOf(res engine.Result) *usage {
	return &usage{
		PromptTokens: res.PromptTokens, CompletionTokens: res.CompletionTokens, TotalTokens: res.PromptTokens + res.CompletionTokens,
		PromptTokensDetails: promptDetails{CachedTokens: res.CachedTokens},
	}
}

func timingsOf(res engine.Result) *timings {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return &timings{
		CacheN: res.CachedTokens, PromptN: res.PromptTokens - res.CachedTokens, PromptMs: ms(res.PromptEval), PredictedN: res.CompletionTokens, PredictedMs: ms(res.Generation),
		PredictedPerSecond: res.TokensPerSecond(), TimeToFirstTokenMs: ms(res.QueueWait + res.PromptEval), QueueMs: ms(res.QueueWait),
	}
}

// generateError maps an admission error to its status code. prompt is the
// request's prompt field, which a prompt too long is charged to.
func (s *Server) generateError(w http.ResponseWriter, err error, prompt string) {
	switch {
	case errors.Is(err, engine.ErrPromptTooLong):
		writeErrorCode(w, http.StatusBadRequest, "invalid_request_error", prompt, "context_length_exceeded", err.Error())
	case errors.Is(err, engine.ErrEmptyPrompt), errors.Is(err, engine.ErrBadRequest), errors.Is(err, engine.ErrUnknownAdapter):
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
	case errors.Is(err, engine.ErrAccessDenied):
		writeError(w, http.StatusForbidden, "permission_error", "", err.Error())
	case errors.Is(err, engine.ErrOverloaded):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "server_busy", "", err.Error())
	case errors.Is(err, engine.ErrEngineClosed):
		writeError(w, http.StatusServiceUnavailable, "server_shutting_down", "", err.Error())
	default:
		writeError(w, http.StatusInternalServerError, "server_error", "", err.Error())
	}
}

func (s *Server) resultError(w http.ResponseWriter, res engine.Result) {
	msg := string(res.StopReason)
	if res.Err != nil {
		msg = res.Err.Error()
	}
	if errors.Is(res.Err, engine.ErrEngineClosed) {
		writeError(w, http.StatusServiceUnavailable, "server_shutting_down", "", msg)
		return
	}
	if errors.Is(res.Err, context.Canceled) || errors.Is(res.Err, context.DeadlineExceeded) {
		// The client went away (or timed out); nobody reads this.
		writeError(w, 499, "cancelled", "", msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "server_error", "", msg)
}

// sseWriter writes server-sent events and flushes each; err keeps the
// first write error (the client left).
type sseWriter struct {
	w   io.Writer
	rc  *http.ResponseController
	err error
	buf []byte
}

func (s *sseWriter) json(v any) {
	if s.err != nil {
		return
	}
	raw, err := json.Marshal(v)
	if err != nil {
		s.err = err
		return
	}
	s.buf = append(append(append(s.buf[:0], "data: "...), raw...), "\n\n"...)
	s.write()
}

func (s *sseWriter) done() {
	s.buf = append(s.buf[:0], "data: [DONE]\n\n"...)
	s.write()
}

func (s *sseWriter) write() {
	if s.err != nil {
		return
	}
	if _, s.err = s.w.Write(s.buf); s.err == nil {
		s.err = s.rc.Flush()
	}
}

func errorBody(msg, typ, param, code string) apiErrorBody {
	b := apiErrorBody{Message: msg, Type: typ}
	if param != "" {
		b.Param = &param
	}
	if code != "" {
		b.Code = &code
	}
	return b
}

// writeError writes OpenAI's error JSON.
func writeError(w http.ResponseWriter, status int, typ, param, msg string) {
	writeErrorCode(w, status, typ, param, "", msg)
}

// writeErrorCode is writeError with an error code
// (context_length_exceeded).
func writeErrorCode(w http.ResponseWriter, status int, typ, param, code, msg string) {
	writeJSON(w, status, apiError{Error: errorBody(msg, typ, param, code)})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
