package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

func init() {
	register(command{name: "load", summary: "drive an OpenAI-compatible server with concurrent streams and measure tokens/s", run: runLoad})
}

// loadResult is one stream's measurement.
type loadResult struct {
	Tokens     int           `json:"tokens"`
	TTFT       time.Duration `json:"ttft_ns"`
	Gen        time.Duration `json:"gen_ns"` // first token to last
	Total      time.Duration `json:"total_ns"`
	GenPerS    float64       `json:"gen_tokens_per_s"`
	ServerPerS float64       `json:"server_tokens_per_s,omitempty"` // the server's own timings, when it sends them
}

// loadReport is what `strata load -json` prints.
type loadReport struct {
	URL           string       `json:"url"`
	Concurrency   int          `json:"concurrency"`
	Requests      int          `json:"requests"`
	MaxTokens     int          `json:"max_tokens"`
	Wall          float64      `json:"wall_s"`
	Tokens        int          `json:"tokens"`
	AggregatePerS float64      `json:"aggregate_tokens_per_s"` // all generated tokens over the wall time
	StreamPerS    float64      `json:"mean_stream_tokens_per_s"`
	MeanTTFTms    float64      `json:"mean_ttft_ms"`
	Streams       []loadResult `json:"streams"`
}

// runLoad sends streaming /v1/completions requests with ignore_eos, so
// every request generates exactly max_tokens, to strata serve or to
// upstream llama-server alike (both take ignore_eos and report timings).
// Tokens are counted from the stream's chunks and checked against the
// usage or timings the server reports.
func runLoad(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("load", stderr)
	url := fs.String("url", "http://127.0.0.1:8080", "server base `URL`")
	conc := fs.Int("c", 1, "concurrent streams")
	nreq := fs.Int("n", 0, "requests in all (default: -c)")
	maxTok := fs.Int("tokens", 128, "tokens to generate per request")
	prompt := fs.String("p", "Write a long story about a lighthouse keeper who finds a message in a bottle.", "prompt")
	model := fs.String("model", "", "model name to send (default: none)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return usageErr(err)
	}
	if fs.NArg() != 0 || *conc < 1 || *nreq < 0 || *maxTok < 2 {
		fmt.Fprintln(stderr, "usage: strata load [-url URL] [-c STREAMS >= 1] [-n REQUESTS >= 0] [-tokens N >= 2] [-p PROMPT] [-json]")
		return errUsage
	}
	if *nreq == 0 {
		*nreq = *conc
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	body, _ := json.Marshal(map[string]any{
		"model": *model, "prompt": *prompt, "max_tokens": *maxTok, "stream": true, "ignore_eos": true,
		"temperature": 0, "stream_options": map[string]any{"include_usage": true}, "cache_prompt": false,
	})
	base := strings.TrimRight(*url, "/")

	jobs := make(chan int)
	results := make([]loadResult, *nreq)
	errs := make([]error, *nreq)
	var wg sync.WaitGroup
	start := time.Now()
	for range *conc {
		wg.Go(func() {
			for i := range jobs {
				results[i], errs[i] = oneStream(ctx, base+"/v1/completions", body)
			}
		})
	}
	for i := range *nreq {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	wall := time.Since(start)
	if err := errors.Join(errs...); err != nil {
		return err
	}
	rep := loadReport{URL: base, Concurrency: *conc, Requests: *nreq, MaxTokens: *maxTok, Wall: wall.Seconds(), Streams: results}
	for _, r := range results {
		rep.Tokens += r.Tokens
		rep.StreamPerS += r.GenPerS / float64(len(results))
		rep.MeanTTFTms += float64(r.TTFT) / 1e6 / float64(len(results))
	}
	rep.AggregatePerS = float64(rep.Tokens) / wall.Seconds()
	if *asJSON {
		return json.NewEncoder(stdout).Encode(rep)
	}
	fmt.Fprintf(stdout, "%s: %d requests, %d at a time, %d tokens each\n", base, *nreq, *conc, *maxTok)
	fmt.Fprintf(stdout, "aggregate %.2f tokens/s (%d tokens in %.2f s); per stream %.2f tokens/s; mean TTFT %.1f ms\n",
		rep.AggregatePerS, rep.Tokens, rep.Wall, rep.StreamPerS, rep.MeanTTFTms)
	return nil
}

// loadClient opens a connection per request. Reusing an idle one races
// a server that closes it (llama-server's keep-alive limit): a POST sent
// as it closes fails with EOF and is not retried, which ended a benchmark
// run of serve-bench. A loopback connect costs microseconds.
var loadClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// oneStream runs one streaming request and measures it.
func oneStream(ctx context.Context, url string, body []byte) (loadResult, error) {
	var r loadResult
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return r, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := loadClient.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return r, fmt.Errorf("%s: %s: %s", url, resp.Status, msg)
	}
	var first, last time.Time
	chunks, reported := 0, 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line, ok := bytes.CutPrefix(sc.Bytes(), []byte("data: "))
		if !ok {
			continue
		}
		if string(line) == "[DONE]" {
			break
		}
		var c struct {
			Choices []struct {
				Text         string  `json:"text"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *struct {
				CompletionTokens int `json:"completion_tokens"`
			} `json:"usage"`
			Timings *struct {
				PredictedN         int     `json:"predicted_n"`
				PredictedPerSecond float64 `json:"predicted_per_second"`
			} `json:"timings"`
			Error *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &c); err != nil {
			return r, fmt.Errorf("%s: bad chunk %.80q: %w", url, line, err)
		}
		if c.Error != nil {
			return r, fmt.Errorf("%s: %s", url, c.Error.Message)
		}
		now := time.Now()
		if slices.ContainsFunc(c.Choices, func(ch struct {
			Text         string  `json:"text"`
			FinishReason *string `json:"finish_reason"`
		}) bool {
			return ch.Text != ""
		}) {
			chunks++
			if first.IsZero() {
				first = now
			}
			last = now
		}
		if c.Usage != nil {
			reported = max(reported, c.Usage.CompletionTokens)
		}
		if c.Timings != nil {
			reported = max(reported, c.Timings.PredictedN)
			r.ServerPerS = c.Timings.PredictedPerSecond
		}
	}
	if err := sc.Err(); err != nil {
		return r, err
	}
	r.Total = time.Since(t0)
	if first.IsZero() {
		return r, fmt.Errorf("%s: the stream carried no text", url)
	}
	// A chunk may carry more than one token (a server holding text back
	// for stop strings or UTF-8); the server's own count wins then.
	r.Tokens = max(chunks, reported)
	r.TTFT = first.Sub(t0)
	r.Gen = last.Sub(first)
	if r.Gen > 0 && r.Tokens > 1 {
		r.GenPerS = float64(r.Tokens-1) / r.Gen.Seconds()
	}
	return r, nil
}
