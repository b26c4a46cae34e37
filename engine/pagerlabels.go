package engine

import (
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
)

// LabelPageIns makes every page-in of p run under pprof labels naming the
// layer, the expert and the persona, so that a CPU profile attributes
// paging time by layer (`go tool pprof -tags`, or -tagfocus='layer=^12$': pprof
// reads a bare number as a numeric range, and these labels are strings). The
// label sets are built here, for layers × experts, so that paging
// allocates nothing for them: a page-in only switches the decoding
// goroutine's labels (pprof.SetGoroutineLabels) and switches them back to
// those of the pager's context after the layer's routing.
//
// Call it before the first decode of any context p observes; it is meant
// for profiling runs (bin/bench sets it with -pprof or -cpuprofile).
func (p *ExpertPager) LabelPageIns(layers, experts int) error {
	if layers <= 0 || experts <= 0 || experts > p.words*64 {
		return fmt.Errorf("engine: expert pager: cannot label %d layers of %d experts (the pager has room for %d)", layers, experts, p.words*64)
	}
	persona := p.persona.String()
	stride := p.words * 64
	labels := make([]context.Context, layers*stride)
	for l := 0; l < layers; l++ {
		layer := strconv.Itoa(l)
		for e := 0; e < experts; e++ {
			labels[l*stride+e] = pprof.WithLabels(p.ctx, pprof.Labels("layer", layer, "expert", strconv.Itoa(e), "persona", persona))
		}
	}
	p.labels = labels
	return nil
}

// label switches the goroutine to the labels of a page-in of expert e of
// layer, if LabelPageIns set them; unlabel switches back.
func (p *ExpertPager) label(layer int, e int32) {
	if i := layer*p.words*64 + int(e); i < len(p.labels) && p.labels[i] != nil {
		pprof.SetGoroutineLabels(p.labels[i])
	}
}

func (p *ExpertPager) unlabel() {
	if p.labels != nil {
		pprof.SetGoroutineLabels(p.ctx)
	}
}
