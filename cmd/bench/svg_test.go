package main

import (
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// svgCounts decodes an SVG document with encoding/xml, failing on
// malformed XML, and counts elements by name and class.
func svgCounts(t *testing.T, doc string) map[string]int {
	t.Helper()
	dec := xml.NewDecoder(strings.NewReader(doc))
	counts := map[string]int{}
	depth := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v\n%s", err, doc)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if depth == 0 && (e.Name.Local != "svg" || e.Name.Space != "http://www.w3.org/2000/svg") {
				t.Fatalf("root element %v, want svg in the SVG namespace", e.Name)
			}
			depth++
			counts[e.Name.Local]++
			for _, a := range e.Attr {
				if a.Name.Local == "class" {
					counts[e.Name.Local+"."+a.Value]++
				}
			}
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Fatalf("unbalanced elements")
	}
	return counts
}

func TestSweepSVG(t *testing.T) {
	mk := func(test string, nGen int, budget int64, ts float64, hits uint64) *result {
		r := &result{inst: instance{model: "m.gguf", threads: 2, nGen: nGen, budget: budget}, modelType: "moe <x&y>", samplesTS: []float64{ts}}
		if test == "pp" {
			r.inst.nPrompt, r.inst.nGen = 64, 0
		}
		if budget > 0 {
			r.paging = &paging{hits: hits, faults: 100 - hits}
			if test == "tg" {
				r.paging.replay = &replayed{accesses: 100, measured: 100, hits: int64(hits) + 5, belady: int64(hits) + 10}
			}
		}
		return r
	}
	results := []*result{
		mk("tg", 32, 0, 1.2, 0), mk("pp", 0, 0, 40, 0),
		mk("tg", 32, 2<<30, 8.5, 80), mk("pp", 0, 2<<30, 30, 85),
		mk("tg", 32, 1<<30, 4.1, 55), mk("pp", 0, 1<<30, 20, 60),
		mk("tg", 32, 3<<29, 6, 70), mk("pp", 0, 3<<29, 25, 72),
	}
	series := sweep(results)
	if len(series) != 2 || series[0].name != "tg32" || series[1].name != "pp64" {
		t.Fatalf("series: %+v", series)
	}
	for _, s := range series {
		if !s.hasMmap || len(s.points) != 3 || s.points[0].budget != 1<<30 || s.points[2].budget != 2<<30 {
			t.Errorf("series %s: %+v", s.name, s)
		}
	}
	var b strings.Builder
	if err := writeSweepSVG(&b, series); err != nil {
		t.Fatal(err)
	}
	c := svgCounts(t, b.String())
	// Belady's line and the share within the budget come with tg's replay.
	for what, want := range map[string]int{"circle.ts": 6, "circle.hit": 6, "line.mmap": 2, "polyline": 6,
		"circle.belady": 3, "polyline.belady": 1, "polyline.inbudget": 1} {
		if c[what] != want {
			t.Errorf("%s: got %d, want %d", what, c[what], want)
		}
	}
	for _, want := range []string{"tg32, budget 1.50 GiB: 6.00 t/s", "tg32, plain mmap: 1.20 t/s", "pp64, budget 2.00 GiB: hit rate 0.850", ">1.00 GiB<",
		"tg32, budget 1.00 GiB: Belady's hit rate 0.650", ">tg32, Belady<", ">tg32, in budget<"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("SVG has no %q", want)
		}
	}
}

// TestSweepSeriesByFile: two model files that llama.cpp describes alike
// are two series, each with its own mmap baseline.
func TestSweepSeriesByFile(t *testing.T) {
	mk := func(model string, budget int64, ts float64) *result {
		return &result{inst: instance{model: "/m/" + model, threads: 2, nGen: 16, budget: budget}, modelType: "llama 8x1B Q8_0", samplesTS: []float64{ts}}
	}
	series := sweep([]*result{mk("bench-moe.gguf", 0, 1), mk("bench-moe.gguf", 1<<30, 5), mk("bench-moe-uniform.gguf", 0, 2), mk("bench-moe-uniform.gguf", 1<<30, 4)})
	if len(series) != 2 || series[0].name != "bench-moe tg16" || series[1].name != "bench-moe-uniform tg16" {
		t.Fatalf("series: %+v", series)
	}
	if series[0].mmapTS != 1 || series[1].mmapTS != 2 || len(series[0].points) != 1 || len(series[1].points) != 1 {
		t.Errorf("series: %+v %+v", series[0], series[1])
	}
}

// TestSweepSVGOnePoint covers a sweep of one budget with no mmap run and
// no hit rate, and a model name that needs escaping.
func TestSweepSVGOnePoint(t *testing.T) {
	r := &result{inst: instance{model: "a", threads: 1, nGen: 8, budget: 1 << 20}, samplesTS: []float64{0}}
	r2 := &result{inst: instance{model: "b<&>", threads: 1, nGen: 8, budget: 1 << 20}, modelType: `x"<&>`, samplesTS: []float64{3}}
	var b strings.Builder
	if err := writeSweepSVG(&b, sweep([]*result{r, r2})); err != nil {
		t.Fatal(err)
	}
	c := svgCounts(t, b.String())
	if c["circle.ts"] != 2 || c["circle.hit"] != 0 || c["line.mmap"] != 0 || c["circle.belady"] != 0 {
		t.Errorf("counts: %v", c)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[float64]float64{0: 1, 0.3: 0.5, 1: 1, 1.2: 2, 7: 10, 42: 50, 180: 200} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%v): got %v, want %v", in, got, want)
		}
	}
}
