package modelgen

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// Router names a router design: how a MoE spec's router weights (and, for
// RouterRealistic, a few attention weights) are drawn so that llama.cpp's
// own routing over text has a chosen shape. See the package doc, "Router
// design".
type Router string

const (
	// RouterZipf, the zero value, gives each layer a Zipf popularity of
	// exponent Spec.RouterSkew over its experts, with a token's experts a
	// function of the token alone (0 skew: random routing). The tiny
	// presets use it; at skew 1.1 on 64 experts it is far more skewed than
	// real models.
	RouterZipf Router = ""
	// RouterRealistic is calibrated to published traces of real MoE
	// models: per layer the top eighth of experts takes 25-45% of the
	// routings, most experts are touched within a few hundred tokens, and
	// 25-45% of a token's experts were the previous token's.
	RouterRealistic Router = "realistic"
	// RouterUniform routes close to uniformly with little reuse from one
	// token to the next: the hard case for paging.
	RouterUniform Router = "uniform"
)

// Routers lists the router designs.
func Routers() []Router { return []Router{RouterZipf, RouterRealistic, RouterUniform} }

// String returns the router's name, "zipf" for RouterZipf.
func (r Router) String() string {
	if r == RouterZipf {
		return "zipf"
	}
	return string(r)
}

// ParseRouter returns the router named s: "zipf" (or ""), "realistic" or
// "uniform".
func ParseRouter(s string) (Router, error) {
	switch s {
	case "", "zipf":
		return RouterZipf, nil
	case string(RouterRealistic), string(RouterUniform):
		return Router(s), nil
	}
	return "", fmt.Errorf("%w %q (known: zipf realistic uniform)", ErrRouter, s)
}

// WithRouter returns s with router r: RouterSkew is cleared for the
// calibrated routers, and set to 1.1 (the former bench-moe's) for
// RouterZipf when s has none.
func (s Spec) WithRouter(r Router) Spec {
	s.Router = r
	switch {
	case r != RouterZipf:
		s.RouterSkew = 0
	case s.RouterSkew == 0:
		s.RouterSkew = 1.1
	}
	return s
}

// Router constants, see the package doc. routerTokenStd is the std of the
// token-dependent part of each router logit; gumbelStd converts a Zipf
// log-probability into logit units of that noise.
const (
	routerTokenStd = 2.0
	gumbelStd      = 1.2825 // π/√6
)

// design is a calibrated router (RouterRealistic, RouterUniform): the
// context heads of layer 0 and the make-up of every router row. See the
// package doc, "Router design".
type design struct {
	skew     float64 // Zipf exponent of the popularity prior; 0 for none
	tokenStd float64 // std of the router logit part read from the token's own embedding
	ctxStd   float64 // std of the part read from the context heads' output
	offsets  []int   // each context head attends to the token this many positions back
	rotate   bool    // each head writes through its own random rotation, not all through one
}

// designs are the calibrated routers, as measured by TestRouterCalibration
// (numbers in the package doc).
var designs = map[Router]*design{
	RouterRealistic: {skew: 0.6, tokenStd: 0.7, ctxStd: 3.5, offsets: []int{0, 1, 2}},
	RouterUniform:   {tokenStd: 1.0, ctxStd: 3.0, offsets: []int{1, 2, 3}, rotate: true},
}

// Context head constants. A context head's score for the token Δ
// positions back is c·K(Δ-d), K(δ) = Σ_{i<ctxPairs} cos(δ·θ_i) over the
// ctxPairs fastest RoPE pairs, with c = ctxSharp. K(0) = 8 and, for head dim
// 64 and base 500000, K(±1) = 7.16, K(±2) = 5.17 and K(δ) ≤ 5.79 for every
// other δ within 4096 tokens: the head puts 99.6% of its attention on Δ = d.
// The slower pairs are left out because they add nearly the same score at
// every distance. ctxGain is γ, the norm of each of the head's output
// columns in the residual stream.
const (
	ctxPairs = 8
	ctxSharp = 8.0
	ctxGain  = 0.5
)

// ctxKernel returns K(δ) for a head dim and RoPE base.
func ctxKernel(delta, headDim int, base float64) float64 {
	var k float64
	for i := range ctxPairs {
		k += math.Cos(float64(delta) * math.Pow(base, -2*float64(i)/float64(headDim)))
	}
	return k
}

// ctxKernelSharp reports whether the context heads of a spec attend where
// they should: K(±1) at least 0.5 and K(δ), |δ| ≥ 2 up to the context
// length, at least 2 below K(0).
func (s Spec) ctxKernelSharp() bool {
	hd, base := s.HeadDim(), float64(s.RopeBase)
	if hd < 2*ctxPairs || base <= 1 {
		return false
	}
	if ctxKernel(1, hd, base) > ctxPairs-0.5 {
		return false
	}
	for d := 2; d <= s.Context; d++ {
		if ctxKernel(d, hd, base) > ctxPairs-2 {
			return false
		}
	}
	return true
}

// design returns the spec's calibrated router design, nil for RouterZipf
// and dense specs.
func (s Spec) design() *design {
	if s.Experts == 0 {
		return nil
	}
	return designs[s.Router]
}

// usesCommon reports whether the model carries the common direction u in
// its token embeddings.
func (g *generator) usesCommon() bool {
	if g.spec.Experts == 0 {
		return false
	}
	return g.spec.Router != RouterZipf || g.spec.RouterSkew > 0
}

// reserved returns the number of residual-stream coordinates, at the top,
// that the context heads write and the routers read: HeadDim for a
// calibrated design, else 0.
func (g *generator) reserved() int {
	if g.design == nil {
		return 0
	}
	return g.spec.HeadDim()
}

// removeCommon subtracts x's component along the common direction u.
func (g *generator) removeCommon(x []float32) {
	var dot float64
	for i := range x {
		dot += float64(x[i]) * float64(g.common[i])
	}
	for i := range x {
		x[i] -= float32(dot) * g.common[i]
	}
}

// skew returns the Zipf exponent of the popularity prior.
func (g *generator) skew() float64 {
	if g.design != nil {
		return g.design.skew
	}
	return g.spec.RouterSkew
}

// router fills rows [first, first+len(buf)/n) of layer's ffn_gate_inp.
// Row e is β_e·u + v_e with v_e ⟂ u random; for a calibrated design v_e
// has a fixed norm and leaves the reserved coordinates to a combination of
// the context heads' outputs. See the package doc.
func (g *generator) router(r *rand.Rand, layer, first int, buf []float32) {
	n := g.spec.Embd
	if !g.usesCommon() {
		uniform(r, buf, routerTokenStd*invSqrt(n))
		return
	}
	// With e_t = m·u + σ z_t and m = σ√n, RMSNorm gives x with x·u ≈ √(n/2)
	// and a token part of norm ≈ √(n/2) spread over random directions.
	kappa := math.Sqrt(float64(n) / 2)
	tau := routerTokenStd / gumbelStd
	tokenStd := routerTokenStd
	var ctx [][]float64
	if g.design != nil {
		tokenStd = g.design.tokenStd
		ctx = g.routerContext(layer)
	}
	s := g.skew()
	var zsum float64
	for k := 1; k <= g.spec.Experts; k++ {
		zsum += math.Pow(float64(k), -s)
	}
	res := g.reserved()
	for row := 0; row*n < len(buf); row++ {
		e := first + row
		x := buf[row*n : (row+1)*n]
		uniform(r, x, float32(tokenStd*math.Sqrt2)*invSqrt(n))
		if res > 0 {
			clear(x[n-res:])
			g.removeCommon(x)
			scaleTo(x, tokenStd*math.Sqrt2)
			for i, w := range ctx[e] {
				x[n-res+i] = float32(w)
			}
		} else {
			g.removeCommon(x)
		}
		if s == 0 {
			continue
		}
		p := math.Pow(float64(g.rank[layer][e]+1), -s) / zsum
		beta := float32(tau * math.Log(p) / kappa)
		for i := range x {
			x[i] += beta * g.common[i]
		}
	}
}

// routerContext returns the rows, one per expert, with which layer's router
// reads the reserved coordinates: orthogonal (as far as n_expert ≤ HeadDim
// allows; else of equal norm), so that no expert is favoured, and scaled so
// that this part of the logit has std ctxStd. The reserved coordinates hold
// γ·Σ_j O_j·v_j, v_j the context value of the token head j attends to, of
// std 1/√2 per coordinate, read after an RMSNorm that scales by about 1/√2:
// its std per coordinate is γ·√(heads)/2.
func (g *generator) routerContext(layer int) [][]float64 {
	hd := g.spec.HeadDim()
	r := g.rng("router-context", uint64(layer))
	rows := make([][]float64, g.spec.Experts)
	for e := range rows {
		rows[e] = make([]float64, hd)
		for i := range rows[e] {
			rows[e][i] = r.NormFloat64()
		}
	}
	orthonormalize(rows, min(len(rows), hd))
	scale := g.design.ctxStd * 2 / (ctxGain * math.Sqrt(float64(len(g.design.offsets))))
	for _, row := range rows {
		for i := range row {
			row[i] *= scale
		}
	}
	return rows
}

// orthonormalize makes the first k rows orthonormal (Gram-Schmidt) and
// scales the rest to unit norm.
func orthonormalize(rows [][]float64, k int) {
	for i, v := range rows {
		if i < k {
			for _, prev := range rows[:i] {
				var dot float64
				for j := range v {
					dot += v[j] * prev[j]
				}
				for j := range v {
					v[j] -= dot * prev[j]
				}
			}
		}
		var norm float64
		for _, x := range v {
			norm += x * x
		}
		for j := range v {
			v[j] /= math.Sqrt(norm)
		}
	}
}

// scaleTo scales x to norm n.
func scaleTo(x []float32, n float64) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	f := float32(n / math.Sqrt(ss))
	for i := range x {
		x[i] *= f
	}
}

// contextHeads draws what the context heads of layer 0 need: the value
// projection they share (HeadDim orthonormal rows orthogonal to u and to the
// reserved coordinates, so each value coordinate has std 1/√2 over tokens)
// and each head's rotation into the reserved coordinates.
func (g *generator) contextHeads() {
	n, hd := g.spec.Embd, g.spec.HeadDim()
	r := g.rng("context-value", 0)
	rows := make([][]float64, hd)
	for i := range rows {
		rows[i] = make([]float64, n)
		for j := range n - hd {
			rows[i][j] = r.NormFloat64()
		}
		var dot float64
		for j, c := range g.common {
			dot += rows[i][j] * float64(c)
		}
		for j, c := range g.common {
			rows[i][j] -= dot * float64(c)
		}
	}
	orthonormalize(rows, hd)
	g.ctxV = make([]float32, hd*n)
	for i, row := range rows {
		for j, v := range row {
			g.ctxV[i*n+j] = float32(v)
		}
	}
	g.ctxO = make([][]float32, len(g.design.offsets))
	for h := range g.ctxO {
		o := make([][]float64, hd)
		for i := range o {
			o[i] = make([]float64, hd)
			o[i][i] = 1
		}
		if g.design.rotate {
			r := g.rng("context-rotation", uint64(h))
			for i := range o {
				for j := range o[i] {
					o[i][j] = r.NormFloat64()
				}
			}
			orthonormalize(o, hd)
		}
		g.ctxO[h] = make([]float32, hd*hd)
		for i := range o {
			for j := range o[i] {
				g.ctxO[h][i*hd+j] = float32(o[i][j])
			}
		}
	}
}

// fillContext writes the context heads into rows [first,
// first+len(buf)/rowLen) of one of layer 0's attention matrices, drawn
// uniform before. Context head h is query head h·G (G query heads per KV
// head) over KV head h. Its keys, and its queries, read only u, whose
// coordinate x·u = κ is the same for every token: under RoPE (pairs
// (2i, 2i+1), rotated by position·θ_i) a query pair that is the key pair
// turned back by d·θ_i scores the token Δ back 2(Aκ)²·cos((Δ-d)θ_i)/√hd, so
// A = √(c·√hd/2)/κ on the first ctxPairs pairs (0 on the others) gives
// c·K(Δ-d). Its values are the shared
// context value projection; its output columns are γ·O_h in the reserved
// coordinates and 0 elsewhere.
func (g *generator) fillContext(p *plan, first int, buf []float32) {
	n, hd := g.spec.Embd, g.spec.HeadDim()
	group := g.spec.Heads / g.spec.HeadsKV
	rowLen := p.rowLen()
	rows := len(buf) / rowLen
	kappa := math.Sqrt(float64(n) / 2)
	a := math.Sqrt(ctxSharp*math.Sqrt(float64(hd))/2) / kappa
	for row := 0; row < rows; row++ {
		// Rows past the first ctxPairs pairs of a context head's queries
		// and keys are 0; out%hd < 2*ctxPairs marks those that are not.
		out := first + row // the matrix row: an output coordinate
		x := buf[row*rowLen : (row+1)*rowLen]
		switch p.kind {
		case fillContextK, fillContextV:
			h, i := out/hd, out%hd
			if h >= len(g.design.offsets) {
				continue
			}
			if p.kind == fillContextV {
				copy(x, g.ctxV[i*n:(i+1)*n])
				continue
			}
			for j := range x {
				x[j] = 0
				if i < 2*ctxPairs {
					x[j] = float32(a) * g.common[j]
				}
			}
		case fillContextQ:
			qh, i := out/hd, out%hd
			h := qh / group
			if qh%group != 0 || h >= len(g.design.offsets) {
				continue
			}
			if i >= 2*ctxPairs {
				clear(x)
				continue
			}
			// Pair i/2 of the key is (A, A)κ; the query's is that pair
			// turned by -d·θ: A(cos+sin, cos-sin).
			theta := math.Pow(float64(g.spec.RopeBase), -float64(i/2*2)/float64(hd))
			d := float64(g.design.offsets[h]) * theta
			coef := a * (math.Cos(d) + math.Sin(d))
			if i%2 == 1 {
				coef = a * (math.Cos(d) - math.Sin(d))
			}
			for j := range x {
				x[j] = float32(coef) * g.common[j]
			}
		case fillContextO:
			for h := range g.design.offsets {
				col := h * group * hd
				for b := range hd {
					v := float32(0)
					if k := out - (n - hd); k >= 0 {
						v = ctxGain * g.ctxO[h][k*hd+b]
					}
					x[col+b] = v
				}
			}
		}
	}
}

// clearReserved zeroes, in a matrix that writes into the residual stream,
// the rows of the reserved coordinates, so that only the context heads
// write there: anything else (the part of attention and FFN outputs that
// is the same for every token, above all) would reach every router
// amplified by its large context weights, as a fixed preference for some
// experts.
func (g *generator) clearReserved(p *plan, first int, buf []float32) {
	res := g.reserved()
	if res == 0 || !p.residual {
		return
	}
	n, rowLen := g.spec.Embd, p.rowLen()
	for row := 0; row*rowLen < len(buf); row++ {
		if (first+row)%n >= n-res {
			clear(buf[row*rowLen : (row+1)*rowLen])
		}
	}
}

// ExpertPopularity returns the share of routing each expert of a layer was
// designed to get (Zipf with exponent RouterSkew over a per-layer random
// permutation), indexed by expert; nil for dense or unskewed specs and for
// the leading dense layers, which have no experts. For RouterRealistic it
// is the popularity prior, which context and token flatten; for
// RouterUniform nil.
func ExpertPopularity(spec Spec, seed uint64, layer int) []float64 {
	g := &generator{spec: spec, seed: seed, design: spec.design()}
	if g.skew() == 0 || !g.usesCommon() || layer < 0 || layer >= spec.Layers || !spec.moeLayer(layer) {
		return nil
	}
	s := g.skew()
	rank := g.rng("rank", uint64(layer)).Perm(spec.Experts)
	out := make([]float64, spec.Experts)
	var sum float64
	for e, k := range rank {
		out[e] = math.Pow(float64(k+1), -s)
		sum += out[e]
	}
	for e := range out {
		out[e] /= sum
	}
	return out
}
