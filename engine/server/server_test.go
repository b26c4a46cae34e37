package server_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/engine/server"
	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
	"github.com/strata-llm/strata/modelgen"
)

func TestMain(m *testing.M) {
	llama.SetLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	os.Exit(m.Run())
}

// fixture is a real Engine on a generated model behind a real HTTP server
// on loopback, and an official OpenAI client pointed at it.
type fixture struct {
	e      *engine.Engine
	url    string
	client openai.Client
}

func newFixture(tb testing.TB, cfg engine.Config) *fixture {
	tb.Helper()
	spec, err := modelgen.Preset("tiny-dense")
	if err != nil {
		tb.Fatal(err)
	}
	path := filepath.Join(tb.TempDir(), "tiny-dense.gguf")
	if err := modelgen.Write(path, spec, modelgen.Options{Type: gguf.TypeQ8_0, Seed: 3}); err != nil {
		tb.Fatal(err)
	}
	cfg.Model = path
	cfg.Threads = 2
	if cfg.ContextSize == 0 {
		cfg.ContextSize = 256
	}
	e, err := engine.Open(context.Background(), cfg)
	if err != nil {
		tb.Fatal(err)
	}
	ts := httptest.NewServer(server.New(e, server.Options{MaxBodyBytes: 1 << 16}))
	tb.Cleanup(func() {
		ts.Close()
		if err := e.Close(); err != nil {
			tb.Error(err)
		}
	})
	c := openai.NewClient(option.WithBaseURL(ts.URL+"/v1/"), option.WithAPIKey("unused"), option.WithMaxRetries(0))
	return &fixture{e: e, url: ts.URL, client: c}
}

func chatParams(f *fixture, prompt string, n int64) openai.ChatCompletionNewParams {
	return openai.ChatCompletionNewParams{
		Model:       f.e.Name(),
		Messages:    []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("Be brief."), openai.UserMessage(prompt)},
		MaxTokens:   openai.Int(n),
		Temperature: openai.Float(0),
	}
}

// streamChat runs a streaming chat request and returns its accumulated text.
func streamChat(ctx context.Context, f *fixture, p openai.ChatCompletionNewParams) (string, openai.ChatCompletion, error) {
	p.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	st := f.client.Chat.Completions.NewStreaming(ctx, p)
	defer st.Close()
	var acc openai.ChatCompletionAccumulator
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil {
		return "", acc.ChatCompletion, err
	}
	if len(acc.Choices) == 0 {
		return "", acc.ChatCompletion, errors.New("no choices")
	}
	return acc.Choices[0].Message.Content, acc.ChatCompletion, nil
}

// TestOpenAIClient talks to the server with the official Go SDK: a chat
// completion whole and streamed (same greedy text, same usage), a legacy
// completion, and the model list.
func TestOpenAIClient(t *testing.T) {
	f := newFixture(t, engine.Config{})
	ctx := context.Background()
	p := chatParams(f, "Hello there", 12)
	whole, err := f.client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(whole.Choices) != 1 || whole.Choices[0].Message.Role != "assistant" || whole.Object != "chat.completion" {
		t.Fatalf("response %+v", whole)
	}
	u := whole.Usage
	if u.CompletionTokens < 1 || u.CompletionTokens > 12 || u.PromptTokens < 5 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage %+v", u)
	}
	if fr := whole.Choices[0].FinishReason; (fr == "length") != (u.CompletionTokens == 12) {
		t.Errorf("finish_reason %q after %d of 12 tokens", fr, u.CompletionTokens)
	}
	text, acc, err := streamChat(ctx, f, p)
	if err != nil {
		t.Fatal(err)
	}
	if text != whole.Choices[0].Message.Content {
		t.Errorf("streamed %q, whole %q", text, whole.Choices[0].Message.Content)
	}
	if acc.Usage.CompletionTokens != u.CompletionTokens || acc.Usage.PromptTokens != u.PromptTokens {
		t.Errorf("streamed usage %+v, whole %+v", acc.Usage, u)
	}

	comp, err := f.client.Completions.New(ctx, openai.CompletionNewParams{
		Model: openai.CompletionNewParamsModel(f.e.Name()), Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String("Once upon")},
		MaxTokens: openai.Int(6), Temperature: openai.Float(0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(comp.Choices) != 1 || comp.Usage.CompletionTokens < 1 || comp.Object != "text_completion" {
		t.Errorf("completion %+v", comp)
	}

	models, err := f.client.Models.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(models.Data) != 1 || models.Data[0].ID != f.e.Name() {
		t.Errorf("models %+v", models.Data)
	}
}

// TestChatPromptCache runs a chat's second turn through the SDK: the
// server decodes only what the first turn's prompt and reply did not
// already put in the sequence's KV, says so in usage (OpenAI's
// prompt_tokens_details.cached_tokens), and answers as it does with
// cache_prompt false, which decodes the whole conversation again.
func TestChatPromptCache(t *testing.T) {
	f := newFixture(t, engine.Config{Parallel: 1})
	ctx := context.Background()
	p := chatParams(f, "Hello there", 8)
	first, err := f.client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c := first.Usage.PromptTokensDetails.CachedTokens; c != 0 {
		t.Errorf("first turn: %d cached tokens, want 0", c)
	}
	p.Messages = append(p.Messages, openai.AssistantMessage(first.Choices[0].Message.Content), openai.UserMessage("And then?"))
	second, err := f.client.Chat.Completions.New(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	u := second.Usage
	if c := u.PromptTokensDetails.CachedTokens; c < first.Usage.PromptTokens || c >= u.PromptTokens {
		t.Errorf("second turn: %d of %d prompt tokens cached, want at least the first turn's %d", c, u.PromptTokens, first.Usage.PromptTokens)
	}
	afresh, err := f.client.Chat.Completions.New(ctx, p, option.WithJSONSet("cache_prompt", false))
	if err != nil {
		t.Fatal(err)
	}
	if c := afresh.Usage.PromptTokensDetails.CachedTokens; c != 0 {
		t.Errorf("cache_prompt false: %d cached tokens, want 0", c)
	}
	if a, b := second.Choices[0].Message.Content, afresh.Choices[0].Message.Content; a != b {
		t.Errorf("second turn from the cache %q, decoded afresh %q", a, b)
	}
}

// TestConcurrentStreams runs four streams at once: each gets the text it
// gets alone (greedy), and all four are decoded together.
func TestConcurrentStreams(t *testing.T) {
	f := newFixture(t, engine.Config{Parallel: 4})
	ctx := context.Background()
	prompts := []string{"alpha", "bravo charlie", "delta echo foxtrot", "golf"}
	alone := make([]string, len(prompts))
	for i, pr := range prompts {
		var err error
		if alone[i], _, err = streamChat(ctx, f, chatParams(f, pr, 16)); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]string, len(prompts))
	errs := make([]error, len(prompts))
	var wg sync.WaitGroup
	for i, pr := range prompts {
		wg.Go(func() { got[i], _, errs[i] = streamChat(ctx, f, chatParams(f, pr, 16)) })
	}
	wg.Wait()
	for i := range prompts {
		if errs[i] != nil {
			t.Fatalf("stream %d: %v", i, errs[i])
		}
		if got[i] != alone[i] {
			t.Errorf("stream %d concurrent: %q, alone: %q", i, got[i], alone[i])
		}
	}
}

// TestClientDisconnects drops a stream after its first chunk: the
// request is cancelled, its sequence freed, and the server keeps serving.
func TestClientDisconnects(t *testing.T) {
	f := newFixture(t, engine.Config{Parallel: 1, ContextSize: 1024})
	ctx, cancel := context.WithCancel(context.Background())
	p := chatParams(f, "tell me everything", 1000)
	p.Temperature = openai.Float(1)
	st := f.client.Chat.Completions.NewStreaming(ctx, p, option.WithJSONSet("ignore_eos", true))
	if !st.Next() {
		t.Fatalf("no first chunk: %v", st.Err())
	}
	cancel()
	st.Close()
	deadline := time.Now().Add(30 * time.Second)
	for f.e.Counters().Active != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the dropped request still holds its sequence: %+v", f.e.Counters())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if c := f.e.Counters(); c.GenTokens >= 1000 {
		t.Errorf("generated %d tokens for a client that left", c.GenTokens)
	}
	if _, _, err := streamChat(context.Background(), f, chatParams(f, "still there?", 4)); err != nil {
		t.Fatalf("after a disconnect: %v", err)
	}
}

// TestErrors checks OpenAI-style errors: status codes and the error body
// the SDK parses.
func TestErrors(t *testing.T) {
	f := newFixture(t, engine.Config{ContextSize: 64})
	ctx := context.Background()
	apiErr := func(t *testing.T, err error, status int, code string) {
		t.Helper()
		var e *openai.Error
		if !errors.As(err, &e) {
			t.Fatalf("got %v, want an API error", err)
		}
		if e.StatusCode != status || (code != "" && e.Code != code) || e.Message == "" {
			t.Errorf("got %d %q %q, want %d %q", e.StatusCode, e.Code, e.Message, status, code)
		}
	}
	p := chatParams(f, "hi", 4)
	p.Model = "gpt-imaginary"
	_, err := f.client.Chat.Completions.New(ctx, p)
	apiErr(t, err, 404, "")
	_, err = f.client.Chat.Completions.New(ctx, chatParams(f, strings.Repeat("long prompt ", 40), 4))
	apiErr(t, err, 400, "context_length_exceeded")
	p = chatParams(f, "hi", 4)
	p.Temperature = openai.Float(3)
	_, err = f.client.Chat.Completions.New(ctx, p)
	apiErr(t, err, 400, "")

	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"bad JSON", `{"model":`, 400},
		{"empty", ``, 400},
		{"no messages", `{"messages":[]}`, 400},
		{"image part", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}`, 400},
		{"unknown role", `{"messages":[{"role":"wizard","content":"hi"}]}`, 400},
		{"tools", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]}`, 400},
		{"json mode", `{"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}`, 400},
		{"logprobs", `{"messages":[{"role":"user","content":"hi"}],"logprobs":true}`, 400},
		{"top_logprobs", `{"messages":[{"role":"user","content":"hi"}],"top_logprobs":3}`, 400},
		{"logprobs false", `{"messages":[{"role":"user","content":"hi"}],"logprobs":false,"max_tokens":2}`, 200},
		{"too big", `{"messages":[{"role":"user","content":"` + strings.Repeat("x", 1<<17) + `"}]}`, 413},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post(f.url+"/v1/chat/completions", "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || (tc.status != 200) != strings.Contains(string(body), `"error":{"message":`) {
				t.Errorf("got %d %s, want %d (and an error object unless 200)", resp.StatusCode, body, tc.status)
			}
		})
	}
}

// TestEventsMetricsPprof reads /v1/events live while a request runs, then
// scrapes /metrics and the pprof index.
func TestEventsMetricsPprof(t *testing.T) {
	f := newFixture(t, engine.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", f.url+"/v1/events?select=inference/llm.*", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("events: %d", resp.StatusCode)
	}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The subscription exists once the handler has flushed its headers.
	if _, _, err := streamChat(context.Background(), f, chatParams(f, "hi", 3)); err != nil {
		t.Fatal(err)
	}
	var seen []string
	if first := <-lines; !strings.HasPrefix(first, ": streaming") {
		t.Errorf("the stream opens with %q, want a comment naming what it carries", first)
	}
	timeout := time.After(20 * time.Second)
wait:
	for {
		select {
		case l := <-lines:
			if k, ok := strings.CutPrefix(l, "event: "); ok {
				seen = append(seen, k)
			}
			if strings.HasPrefix(l, ": streaming") && !strings.Contains(l, "inference/llm.") {
				t.Errorf("first comment does not name the selection: %q", l)
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, `"stop_reason"`) {
				if !strings.Contains(l, `"id":"`) {
					t.Errorf("completion without a string id: %s", l)
				}
				break wait
			}
		case <-timeout:
			t.Fatalf("events seen: %v; no completion", seen)
		}
	}
	if len(seen) < 3 || seen[0] != "inference/llm.request" || seen[len(seen)-1] != "inference/llm.complete" {
		t.Errorf("events %v", seen)
	}
	if bad, _ := http.Get(f.url + "/v1/events?select=bad//key"); bad == nil || bad.StatusCode != 400 {
		t.Errorf("a bad selector was accepted")
	}

	for _, tc := range []struct{ path, want string }{
		{"/metrics", "strata_engine_generated_tokens_total"},
		{"/metrics", `strata_http_requests_finished_total{stop_reason=`},
		{"/debug/pprof/", "goroutine"},
		{"/health", `"ok"`},
	} {
		r, err := http.Get(f.url + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != 200 || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: %d, body lacks %q", tc.path, r.StatusCode, tc.want)
		}
	}
}

// TestCompletionExtensions checks ignore_eos and echo on /v1/completions.
// On the fixture's model, greedy decoding of "a" ends on an
// end-of-generation token after a few tokens: with ignore_eos it runs to
// max_tokens. echo starts the text with the prompt, whole and streamed. A
// prompt too long is charged to "prompt" here ("messages" on chat).
func TestCompletionExtensions(t *testing.T) {
	f := newFixture(t, engine.Config{ContextSize: 64})
	ctx := context.Background()
	params := func(prompt string) openai.CompletionNewParams {
		return openai.CompletionNewParams{
			Model: openai.CompletionNewParamsModel(f.e.Name()), Prompt: openai.CompletionNewParamsPromptUnion{OfString: openai.String(prompt)},
			MaxTokens: openai.Int(40), Temperature: openai.Float(0),
		}
	}
	plain, err := f.client.Completions.New(ctx, params("a"))
	if err != nil {
		t.Fatal(err)
	}
	if plain.Choices[0].FinishReason != "stop" || plain.Usage.CompletionTokens >= 40 {
		t.Fatalf("without ignore_eos: %q after %d tokens, want an early stop (the test needs a prompt that stops)", plain.Choices[0].FinishReason, plain.Usage.CompletionTokens)
	}
	long, err := f.client.Completions.New(ctx, params("a"), option.WithJSONSet("ignore_eos", true))
	if err != nil {
		t.Fatal(err)
	}
	if long.Choices[0].FinishReason != "length" || long.Usage.CompletionTokens != 40 {
		t.Errorf("with ignore_eos: %q after %d tokens, want length after 40", long.Choices[0].FinishReason, long.Usage.CompletionTokens)
	}

	echoed, err := f.client.Completions.New(ctx, params("a"), option.WithJSONSet("echo", true))
	if err != nil {
		t.Fatal(err)
	}
	if want := "a" + plain.Choices[0].Text; echoed.Choices[0].Text != want {
		t.Errorf("echo: %q, want %q", echoed.Choices[0].Text, want)
	}
	st := f.client.Completions.NewStreaming(ctx, params("a"), option.WithJSONSet("echo", true))
	var streamed strings.Builder
	for st.Next() {
		for _, c := range st.Current().Choices {
			streamed.WriteString(c.Text)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if streamed.String() != echoed.Choices[0].Text {
		t.Errorf("streamed echo %q, whole %q", streamed.String(), echoed.Choices[0].Text)
	}

	_, err = f.client.Completions.New(ctx, params(strings.Repeat("long prompt ", 40)))
	var e *openai.Error
	if !errors.As(err, &e) || e.Code != "context_length_exceeded" || e.Param != "prompt" {
		t.Errorf("long prompt: %v, want context_length_exceeded on prompt", err)
	}
}
