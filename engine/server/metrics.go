package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/genome"
)

// metrics is the Server's Prometheus registry: the Engine's and the
// genome's counters read at scrape time, and latency histograms the
// Server fills as requests finish. Its own registry, not the global one,
// so two Servers in one process do not collide.
type metrics struct {
	reg      *prometheus.Registry
	requests prometheus.Counter
	finishes *prometheus.CounterVec
	ttft     prometheus.Histogram
	total    prometheus.Histogram
	tps      prometheus.Histogram
}

func newMetrics(e *engine.Engine, s *Server) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounter(prometheus.CounterOpts{Name: "strata_http_requests_total", Help: "Generation requests the HTTP API admitted."})
	m.finishes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "strata_http_requests_finished_total", Help: "Generation requests finished, by stop reason."}, []string{"stop_reason"})
	buckets := prometheus.ExponentialBuckets(0.005, 2, 14) // 5 ms to 41 s
	m.ttft = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_time_to_first_token_seconds", Help: "Time from admission to the first token.", Buckets: buckets})
	m.total = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_request_duration_seconds", Help: "Time from admission to the end of the request.", Buckets: buckets})
	m.tps = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "strata_generation_tokens_per_second", Help: "Generation speed of each request.", Buckets: prometheus.ExponentialBuckets(1, 1.5, 16)})

	counter := func(name, help string, f func(engine.Counters) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(e.Counters())) })
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	gs := func(f func(genome.Stats) float64) func() float64 {
		return func() float64 { return f(e.Genome().Stats()) }
	}
	m.reg.MustRegister(
		m.requests, m.finishes, m.ttft, m.total, m.tps,
		counter("strata_engine_requests_accepted_total", "Requests the engine admitted.", func(c engine.Counters) uint64 { return c.Accepted }),
		counter("strata_engine_requests_rejected_total", "Requests the engine refused (bad, too long, denied, overloaded).", func(c engine.Counters) uint64 { return c.Rejected }),
		counter("strata_engine_prompt_tokens_total", "Prompt tokens decoded.", func(c engine.Counters) uint64 { return c.PromptTokens }),
		counter("strata_engine_prompt_tokens_cached_total", "Prompt tokens not decoded because a sequence held their KV already.", func(c engine.Counters) uint64 { return c.CachedTokens }),
		counter("strata_engine_kv_copies_total", "KV streams copied to another sequence to keep the busy sequence ids consecutive.", func(c engine.Counters) uint64 { return c.KVCopies }),
		counter("strata_engine_generated_tokens_total", "Tokens generated.", func(c engine.Counters) uint64 { return c.GenTokens }),
		counter("strata_engine_residency_faults_total", "MoE experts paged in during decodes.", func(c engine.Counters) uint64 { return c.ResidencyFaults }),
		gauge("strata_engine_active_sequences", "Sequences being decoded.", func() float64 { return float64(e.Counters().Active) }),
		gauge("strata_engine_queued_requests", "Requests waiting for a sequence.", func() float64 { return float64(e.Counters().Waiting) }),
		gauge("strata_engine_parallel_sequences", "Sequences the engine decodes together at most.", func() float64 { return float64(e.Parallel()) }),
		gauge("strata_events_streams", "Open /v1/events streams.", func() float64 { return float64(s.streams.Load()) }),
		gauge("strata_genome_hits_total", "Genome page-ins that found the page resident.", gs(func(g genome.Stats) float64 { return float64(g.Hits) })),
		gauge("strata_genome_faults_total", "Genome page-ins that moved a page up a tier.", gs(func(g genome.Stats) float64 { return float64(g.TotalFaults()) })),
		gauge("strata_genome_evictions_total", "Pages the genome moved down a tier.", gs(func(g genome.Stats) float64 { return float64(g.Evictions) })),
		gauge("strata_genome_bytes_paged_in_total", "Bytes promoted by faults.", gs(func(g genome.Stats) float64 { return float64(g.BytesPagedIn) })),
		gauge("strata_genome_denials_total", "Access denials.", gs(func(g genome.Stats) float64 { return float64(g.Denials) })),
		gauge("strata_genome_locked_bytes", "Bytes mlock'd in the Warm tier.", gs(func(g genome.Stats) float64 { return float64(g.LockedBytes) })),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// finished records a request that ended.
func (m *metrics) finished(res engine.Result) {
	m.finishes.WithLabelValues(string(res.StopReason)).Inc()
	m.total.Observe(res.Total.Seconds())
	if res.CompletionTokens > 0 {
		m.ttft.Observe((res.QueueWait + res.PromptEval).Seconds())
	}
	if tps := res.TokensPerSecond(); tps > 0 {
		m.tps.Observe(tps)
	}
}
