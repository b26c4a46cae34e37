package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// sweepSeries is one line of the -budget sweep plot: one test (and thread
// count, and model when there are several) over the budgets, with the
// same test under plain mmap as its baseline.
type sweepSeries struct {
	name    string
	points  []sweepPoint // by budget
	mmapTS  float64      // the plain mmap run's tokens/s
	hasMmap bool
}

type sweepPoint struct {
	budget int64
	ts     float64
	hit    float64
	hitOK  bool
	// Over the test's generated tokens: the share the genome served
	// within its budget (Warm hits and Bench promotions), and Belady's.
	inBudget, belady     float64
	inBudgetOK, beladyOK bool
}

// sweep groups results into series for the plot.
func sweep(results []*result) []*sweepSeries {
	models, threads := map[string]bool{}, map[int]bool{}
	for _, r := range results {
		models[r.inst.model], threads[r.inst.threads] = true, true
	}
	key := func(r *result) string {
		k := r.inst.testName()
		if len(threads) > 1 {
			k += fmt.Sprintf(", t=%d", r.inst.threads)
		}
		if len(models) > 1 {
			// The file, not llama.cpp's description: two presets of one
			// shape (bench-moe and bench-moe-uniform) describe alike.
			k = strings.TrimSuffix(filepath.Base(r.inst.model), ".gguf") + " " + k
		}
		return k
	}
	var out []*sweepSeries
	byKey := map[string]*sweepSeries{}
	for _, r := range results {
		k := key(r)
		s := byKey[k]
		if s == nil {
			s = &sweepSeries{name: k}
			byKey[k] = s
			out = append(out, s)
		}
		if r.inst.budget == 0 {
			s.mmapTS, s.hasMmap = r.avgTS(), true
			continue
		}
		p := sweepPoint{budget: r.inst.budget, ts: r.avgTS()}
		if r.paging != nil {
			p.hit, p.hitOK = r.paging.hitRate()
			p.inBudget, p.inBudgetOK = r.paging.replayed().measuredRate()
			p.belady, p.beladyOK = r.paging.replayed().beladyRate()
		}
		s.points = append(s.points, p)
	}
	for _, s := range out {
		slices.SortFunc(s.points, func(a, b sweepPoint) int { return cmp.Compare(a.budget, b.budget) })
	}
	return slices.DeleteFunc(out, func(s *sweepSeries) bool { return len(s.points) == 0 })
}

func writeSVGFile(path string, results []*result) error {
	series := sweep(results)
	if len(series) == 0 {
		return errors.New("-svg: no test ran with a budget")
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = writeSweepSVG(w, series)
	return errors.Join(err, w.Flush(), f.Close())
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"}

// writeSweepSVG draws two panels over the budget: tokens/s of the genome
// (solid, with points) and of plain mmap (dashed, one level per series,
// since mmap has no budget), and the genome's hit rate (solid) with, on
// the test's generated tokens, the share it served within the budget
// (dashed) and Belady's optimum for that share (dotted, hollow points).
// Hand-written SVG 1.1: no dependencies, readable in any browser.
func writeSweepSVG(w io.Writer, series []*sweepSeries) error {
	const (
		width, height    = 760, 560
		left, right, top = 70, 190, 40
		panelH, gap      = 200, 70
	)
	plotW := float64(width - left - right)
	var budgets []int64
	maxTS := 0.0
	for _, s := range series {
		for _, p := range s.points {
			budgets = append(budgets, p.budget)
			maxTS = max(maxTS, p.ts)
		}
		if s.hasMmap {
			maxTS = max(maxTS, s.mmapTS)
		}
	}
	slices.Sort(budgets)
	budgets = slices.Compact(budgets)
	lo, hi := float64(budgets[0]), float64(budgets[len(budgets)-1])
	if hi == lo {
		lo, hi = lo*0.9, hi*1.1
	}
	pad := (hi - lo) * 0.05
	lo, hi = lo-pad, hi+pad
	x := func(b int64) float64 { return float64(left) + (float64(b)-lo)/(hi-lo)*plotW }
	tsTop := niceCeil(maxTS)
	yTS := func(v float64) float64 { return float64(top) + float64(panelH)*(1-v/tsTop) }
	hitTop := float64(top + panelH + gap)
	yHit := func(v float64) float64 { return hitTop + float64(panelH)*(1-v) }

	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">
<rect width="100%%" height="100%%" fill="white"/>
`, width, height, width, height)
	panel := func(y0 float64, title, ylabel string, ticks []float64, format string, yOf func(float64) float64) {
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="14" font-weight="bold">%s</text>`+"\n", left, y0-14, esc(title))
		fmt.Fprintf(&b, `<rect x="%d" y="%.1f" width="%.1f" height="%d" fill="none" stroke="#444"/>`+"\n", left, y0, plotW, panelH)
		for _, t := range ticks {
			fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", left, yOf(t), float64(left)+plotW, yOf(t))
			fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yOf(t)+4, fmt.Sprintf(format, t))
		}
		for _, bu := range budgets {
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x(bu), y0+float64(panelH)+16, esc(sizeString(uint64(bu))))
		}
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="middle" transform="rotate(-90 %d %.1f)">%s</text>`+"\n",
			18, y0+float64(panelH)/2, 18, y0+float64(panelH)/2, esc(ylabel))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">expert budget</text>`+"\n", float64(left)+plotW/2, y0+float64(panelH)+34)
	}
	panel(float64(top), "tokens/s against the expert budget", "tokens/s", linspace(0, tsTop, 5), "%.3g", yTS)
	panel(hitTop, "hit rate against the expert budget; Belady's optimum dotted", "hit rate", linspace(0, 1, 5), "%.2f", yHit)

	legendY := float64(top)
	for i, s := range series {
		c := palette[i%len(palette)]
		var pts, hits, inBudget, belady []string
		for _, p := range s.points {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.budget), yTS(p.ts)))
			if p.hitOK {
				hits = append(hits, fmt.Sprintf("%.1f,%.1f", x(p.budget), yHit(p.hit)))
			}
			if p.inBudgetOK {
				inBudget = append(inBudget, fmt.Sprintf("%.1f,%.1f", x(p.budget), yHit(p.inBudget)))
			}
			if p.beladyOK {
				belady = append(belady, fmt.Sprintf("%.1f,%.1f", x(p.budget), yHit(p.belady)))
			}
		}
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(pts, " "), c)
		for _, p := range s.points {
			fmt.Fprintf(&b, `<circle class="ts" cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s, budget %s: %.2f t/s</title></circle>`+"\n",
				x(p.budget), yTS(p.ts), c, esc(s.name), esc(sizeString(uint64(p.budget))), p.ts)
		}
		if s.hasMmap {
			fmt.Fprintf(&b, `<line class="mmap" x1="%d" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"><title>%s, plain mmap: %.2f t/s</title></line>`+"\n",
				left, yTS(s.mmapTS), float64(left)+plotW, yTS(s.mmapTS), c, esc(s.name), s.mmapTS)
		}
		if len(hits) > 0 {
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>`+"\n", strings.Join(hits, " "), c)
			for _, p := range s.points {
				if p.hitOK {
					fmt.Fprintf(&b, `<circle class="hit" cx="%.1f" cy="%.1f" r="4" fill="%s"><title>%s, budget %s: hit rate %.3f</title></circle>`+"\n",
						x(p.budget), yHit(p.hit), c, esc(s.name), esc(sizeString(uint64(p.budget))), p.hit)
				}
			}
		}
		if len(inBudget) > 0 {
			fmt.Fprintf(&b, `<polyline class="inbudget" points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", strings.Join(inBudget, " "), c)
		}
		if len(belady) > 0 {
			fmt.Fprintf(&b, `<polyline class="belady" points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="2 3"/>`+"\n", strings.Join(belady, " "), c)
			for _, p := range s.points {
				if p.beladyOK {
					fmt.Fprintf(&b, `<circle class="belady" cx="%.1f" cy="%.1f" r="3.5" fill="white" stroke="%s" stroke-width="1.5"><title>%s, budget %s: Belady's hit rate %.3f</title></circle>`+"\n",
						x(p.budget), yHit(p.belady), c, esc(s.name), esc(sizeString(uint64(p.budget))), p.belady)
				}
			}
		}
		lx := float64(width - right + 16)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"/>`+"\n", lx, legendY, lx+24, legendY, c)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s, genome</text>`+"\n", lx+30, legendY+4, esc(s.name))
		legendY += 18
		if s.hasMmap {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", lx, legendY, lx+24, legendY, c)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s, mmap</text>`+"\n", lx+30, legendY+4, esc(s.name))
			legendY += 18
		}
		if len(inBudget) > 0 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="6 4"/>`+"\n", lx, legendY, lx+24, legendY, c)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s, in budget</text>`+"\n", lx+30, legendY+4, esc(s.name))
			legendY += 18
		}
		if len(belady) > 0 {
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="2 3"/>`+"\n", lx, legendY, lx+24, legendY, c)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.1f">%s, Belady</text>`+"\n", lx+30, legendY+4, esc(s.name))
			legendY += 18
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func esc(s string) string { return html.EscapeString(s) }

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func linspace(lo, hi float64, n int) []float64 {
	out := make([]float64, n+1)
	for i := range out {
		out[i] = lo + (hi-lo)*float64(i)/float64(n)
	}
	return out
}
