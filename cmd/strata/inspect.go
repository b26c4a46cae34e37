package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/strata-llm/strata/gguf"
	"github.com/strata-llm/strata/llama"
)

func init() {
	register(command{
		name:    "inspect",
		summary: "summarize a GGUF file: architecture, sizes, metadata, tensors, expert byte ranges",
		run:     runInspect,
	})
}

func runInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("inspect", stderr)
	all := fs.Bool("all", false, "print long metadata arrays in full")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "usage: strata inspect [-all] FILE")
		return errUsage
	}
	f, err := gguf.Open(fs.Arg(0))
	if err != nil {
		return err
	}
	var dataBytes uint64
	for _, t := range f.Tensors {
		dataBytes += t.Size
	}
	fmt.Fprintf(stdout, "file:         %s\n", f.Path)
	fmt.Fprintf(stdout, "size:         %d bytes (%s); header %d, tensor data %d\n", f.FileSize, humanBytes(f.FileSize), f.DataOffset, dataBytes)
	fmt.Fprintf(stdout, "gguf:         version %d, alignment %d\n", f.Version, f.Alignment)
	fmt.Fprintf(stdout, "architecture: %s\n", orNone(f.Architecture()))
	if name, ok := f.String("general.name"); ok {
		fmt.Fprintf(stdout, "name:         %s\n", name)
	}
	fmt.Fprintf(stdout, "parameters:   %d (%.3g)\n", f.ParamCount(), float64(f.ParamCount()))
	fmt.Fprintf(stdout, "layers:       %d\n", f.BlockCount())
	if n := f.ExpertCount(); n > 0 {
		fmt.Fprintf(stdout, "experts:      %d, %d used per token\n", n, f.ExpertUsedCount())
	}
	types := map[gguf.Type]uint64{}
	for _, t := range f.Tensors {
		types[t.Type] += t.Size
	}
	var ts []string
	for t, n := range types {
		ts = append(ts, fmt.Sprintf("%v %s", t, humanBytes(int64(n))))
	}
	fmt.Fprintf(stdout, "types:        %s\n", strings.Join(sorted(ts), ", "))

	fmt.Fprintf(stdout, "\nmetadata (%d keys):\n", len(f.KV))
	tw := tabwriter.NewWriter(stdout, 2, 8, 2, ' ', 0)
	for _, kv := range f.KV {
		fmt.Fprintf(tw, "  %s\t%s\n", kv.Key, formatValue(kv.Value, *all))
	}
	tw.Flush()

	fmt.Fprintf(stdout, "\ntensors (%d):\n", len(f.Tensors))
	tw = tabwriter.NewWriter(stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "name\ttype\tdims\toffset\tbytes\t\n")
	for _, t := range f.Tensors {
		fmt.Fprintf(tw, "%s\t%v\t%s\t%d\t%d\t\n", t.Name, t.Type, dims(t.Dims), t.Offset, t.Size)
	}
	tw.Flush()

	if n := f.ExpertCount(); n > 0 {
		fmt.Fprintf(stdout, "\nexpert byte ranges (gate, up, down slices; [offset, end)):\n")
		for l := range f.WalkBlocks() { // a corrupt block_count is not walked
			if _, err := f.ExpertRanges(l, 0); errors.Is(err, gguf.ErrNotFound) {
				// A dense layer of an MoE model (DeepSeek's leading layers).
				fmt.Fprintf(stdout, "  layer %d: dense, no experts\n", l)
				continue
			}
			fmt.Fprintf(stdout, "  layer %d:\n", l)
			for e := 0; e < n; e++ {
				rs, err := f.ExpertRanges(l, e)
				if err != nil {
					return fmt.Errorf("layer %d expert %d: %w", l, e, err)
				}
				var parts []string
				var total uint64
				for _, r := range rs {
					parts = append(parts, fmt.Sprintf("[%d, %d)", r.Off, r.End()))
					total += r.Len
				}
				fmt.Fprintf(stdout, "    expert %3d  %s  %s\n", e, humanBytes(int64(total)), strings.Join(parts, " "))
			}
		}
	}
	// The summary above is what the file says; whether llama.cpp would
	// load it is a separate question, answered by the loader's own checks.
	if err := llama.Validate(f); err != nil {
		fmt.Fprintf(stdout, "loadable:     no\n")
		return fmt.Errorf("strata inspect: llama.cpp would refuse this file: %w", err)
	}
	fmt.Fprintf(stdout, "loadable:     passes the loader's checks\n")
	return nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func dims(d []uint64) string {
	s := make([]string, len(d))
	for i, x := range d {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, "×")
}

func sorted(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}

// formatValue prints a metadata value, eliding the middle of long arrays.
func formatValue(v any, all bool) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("%q", x)
	case []string:
		return formatSlice(len(x), all, func(i int) string { return fmt.Sprintf("%q", x[i]) }, "string")
	case []int32:
		return formatSlice(len(x), all, func(i int) string { return fmt.Sprint(x[i]) }, "int32")
	case []float32:
		return formatSlice(len(x), all, func(i int) string { return fmt.Sprint(x[i]) }, "float32")
	case []uint32:
		return formatSlice(len(x), all, func(i int) string { return fmt.Sprint(x[i]) }, "uint32")
	}
	return fmt.Sprintf("%v (%T)", v, v)
}

func formatSlice(n int, all bool, item func(int) string, typ string) string {
	const keep = 8
	var parts []string
	for i := 0; i < n; i++ {
		if !all && n > keep && i == keep/2 {
			parts = append(parts, "…")
			i = n - keep/2
		}
		parts = append(parts, item(i))
	}
	return fmt.Sprintf("[%s] (%d × %s)", strings.Join(parts, " "), n, typ)
}
