package main

import (
	"slices"

	"github.com/strata-llm/strata/engine"
	"github.com/strata-llm/strata/llama"
)

// instance is one test configuration: one point of the cartesian product
// of the flags, and one output row.
type instance struct {
	model     string
	ngl       int
	ncmoe     int
	splitMode llama.SplitMode
	mainGPU   int
	devices   devices
	overrides overrideGroup
	budget    int64
	nBatch    int
	nUbatch   int
	flashAttn llama.FlashAttention
	threads   int
	nDepth    int
	nPrompt   int
	nGen      int
	noMmap    bool
}

// instances expands the options into tests in llama-bench's order, which
// keeps instances that share a loaded model next to each other: model
// parameters outermost, then context parameters, then the tests. The
// budget counts as a model parameter, since it decides how the model is
// loaded (engine.PagedExperts) and owns a genome.
func instances(o *options) []instance {
	dims := []int{len(o.models), len(o.ngl), len(o.ncmoe), len(o.splitMode), len(o.mainGPU), len(o.devices),
		len(o.overrides), len(o.budgets), len(o.nBatch), len(o.nUbatch), len(o.flashAttn), len(o.threads), len(o.nDepth)}
	if slices.Contains(dims, 0) {
		return nil
	}
	var out []instance
	// idx counts through the product like an odometer, the last axis
	// fastest, as llama-bench's nested loops do.
	for idx := make([]int, len(dims)); idx != nil; idx = odometer(idx, dims) {
		base := instance{
			model: o.models[idx[0]], ngl: o.ngl[idx[1]], ncmoe: o.ncmoe[idx[2]], splitMode: o.splitMode[idx[3]],
			mainGPU: o.mainGPU[idx[4]], devices: o.devices[idx[5]], overrides: o.overrides[idx[6]],
			budget: o.budgets[idx[7]], nBatch: o.nBatch[idx[8]], nUbatch: o.nUbatch[idx[9]],
			flashAttn: o.flashAttn[idx[10]], threads: o.threads[idx[11]], nDepth: o.nDepth[idx[12]],
			noMmap: o.noMmap,
		}
		for _, p := range o.nPrompt {
			if p > 0 {
				i := base
				i.nPrompt = p
				out = append(out, i)
			}
		}
		for _, n := range o.nGen {
			if n > 0 {
				i := base
				i.nGen = n
				out = append(out, i)
			}
		}
		for _, p := range o.nPG {
			if p.pp > 0 || p.tg > 0 {
				i := base
				i.nPrompt, i.nGen = p.pp, p.tg
				out = append(out, i)
			}
		}
	}
	return out
}

// odometer advances idx over dims, the last position fastest, and returns
// nil after the last combination (or at once if a dimension is empty).
func odometer(idx, dims []int) []int {
	for k := len(idx) - 1; k >= 0; k-- {
		if idx[k]++; idx[k] < dims[k] {
			return idx
		}
		idx[k] = 0
	}
	return nil
}

// modelParams are the llama.cpp load parameters of i.
func (i instance) modelParams() llama.ModelParams {
	mp := llama.ModelParams{
		NoMmap: i.noMmap, GPULayers: i.ngl, MainGPU: i.mainGPU, SplitMode: i.splitMode,
		Devices: i.devices.names, NoDevices: i.devices.none,
		TensorOverrides: slices.Clone(i.overrides), NCPUMoE: i.ncmoe,
	}
	if i.budget > 0 {
		mp = engine.PagedExperts(mp) // experts stay in the file mapping the genome pages
	}
	return mp
}

// sameModel says whether i can reuse the model loaded for j.
func (i instance) sameModel(j instance) bool {
	return i.model == j.model && i.ngl == j.ngl && i.ncmoe == j.ncmoe && i.splitMode == j.splitMode &&
		i.mainGPU == j.mainGPU && i.devices.String() == j.devices.String() &&
		i.overrides.String() == j.overrides.String() && (i.budget > 0) == (j.budget > 0)
}

// testName is llama-bench's test column: pp512, tg128, pp512+tg128, with
// " @ d<depth>" when the context was not empty.
func (i instance) testName() string {
	return testName(i.nPrompt, i.nGen, i.nDepth)
}
