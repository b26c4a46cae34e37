package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// levelsPerm returns n levels made of permutations of 0..31, one per group
// of 32, so that every block or sub-block of 32 holds both 0 and 31 and
// its fitted scale is exact; the order is random so that a layout bug
// cannot hide behind a regular pattern.
func levelsPerm(n int) []uint8 {
	r := rand.New(rand.NewPCG(5, 6))
	q := make([]uint8, 0, n)
	for len(q) < n {
		for _, v := range r.Perm(32) {
			q = append(q, uint8(v))
		}
	}
	return q
}

// TestQ5Known encodes blocks that five bits represent exactly, for each of
// Q5_0, Q5_1 and Q5_K, and checks every byte against the layout of
// ggml-common.h built here from the levels, not by the encoder's loops, and
// that the values decode back exactly (or within f16 rounding of the
// scales for Q5_K).
func TestQ5Known(t *testing.T) {
	le := binary.LittleEndian
	t.Run("q5_0", func(t *testing.T) {
		// x = q-16: the largest magnitude is -16 (q = 0), so d = -16/-16 =
		// 1 and trunc(x/d+16.5) = q.
		q := levelsPerm(2 * QK5_0)
		x := make([]float32, len(q))
		for i, v := range q {
			x[i] = float32(v) - 16
		}
		b := EncodeQ5_0(nil, x)
		var want []byte
		for blk := 0; blk < len(q); blk += QK5_0 {
			want = le.AppendUint16(want, 0x3c00) // d = 1
			var qh uint32
			for j := 0; j < QK5_0; j++ {
				qh |= uint32(q[blk+j]>>4) << j
			}
			want = le.AppendUint32(want, qh)
			for j := 0; j < QK5_0/2; j++ {
				want = append(want, q[blk+j]&0x0f|(q[blk+j+16]&0x0f)<<4)
			}
		}
		if !bytes.Equal(b, want) {
			t.Errorf("blocks:\ngot  % x\nwant % x", b, want)
		}
		if y, _ := Decode(nil, TypeQ5_0, b); !equalF32(y, x) {
			t.Errorf("decode: got %v, want %v", y, x)
		}
	})
	t.Run("q5_1", func(t *testing.T) {
		// x = q/2 + 1: min 1, max 16.5, so d = 15.5/31 = 0.5, m = 1, and
		// trunc((x-m)/d+0.5) = q.
		q := levelsPerm(2 * QK5_1)
		x := make([]float32, len(q))
		for i, v := range q {
			x[i] = float32(v)/2 + 1
		}
		b := EncodeQ5_1(nil, x)
		var want []byte
		for blk := 0; blk < len(q); blk += QK5_1 {
			want = le.AppendUint16(want, 0x3800) // d = 0.5
			want = le.AppendUint16(want, 0x3c00) // m = 1
			var qh uint32
			for j := 0; j < QK5_1; j++ {
				qh |= uint32(q[blk+j]>>4) << j
			}
			want = le.AppendUint32(want, qh)
			for j := 0; j < QK5_1/2; j++ {
				want = append(want, q[blk+j]&0x0f|(q[blk+j+16]&0x0f)<<4)
			}
		}
		if !bytes.Equal(b, want) {
			t.Errorf("blocks:\ngot  % x\nwant % x", b, want)
		}
		if y, _ := Decode(nil, TypeQ5_1, b); !equalF32(y, x) {
			t.Errorf("decode: got %v, want %v", y, x)
		}
	})
	t.Run("q5_K", func(t *testing.T) {
		// x = q-16 in every sub-block of 32: the first trial fits scale 1
		// and min 16 with no error, so all sixteen 6-bit scales and mins
		// are 63 (twelve bytes 0xff) against d = 1/63 and dmin = 16/63,
		// and the levels are q.
		q := levelsPerm(QK_K)
		x := make([]float32, len(q))
		for i, v := range q {
			x[i] = float32(v) - 16
		}
		b := EncodeQ5_K(nil, x)
		if len(b) != BlockQ5_KBytes {
			t.Fatalf("len: got %d, want %d", len(b), BlockQ5_KBytes)
		}
		var want []byte
		want = le.AppendUint16(want, 0x2410) // 1/63
		want = le.AppendUint16(want, 0x3410) // 16/63
		want = append(want, bytes.Repeat([]byte{0xff}, kScaleSize)...)
		// Value i = 64k + 32h + l (h = 0 or 1) keeps its fifth bit in bit
		// 2k+h of qh[l] and its low four bits in nibble h of qs[32k+l].
		var qh [QK_K / 8]byte
		var qs [QK_K / 2]byte
		for i, v := range q {
			k, h, l := i/64, i%64/32, i%32
			qh[l] |= (v >> 4) << (2*k + h)
			qs[32*k+l] |= (v & 0x0f) << (4 * h)
		}
		want = append(want, qh[:]...)
		want = append(want, qs[:]...)
		if !bytes.Equal(b, want) {
			t.Errorf("block:\ngot  % x\nwant % x", b, want)
		}
		y, _ := Decode(nil, TypeQ5_K, b)
		for i := range x {
			if math.Abs(float64(y[i]-x[i])) > 2e-2 {
				t.Fatalf("value %d: got %g, want %g ± 2e-2", i, y[i], x[i])
			}
		}
	})
}

func equalF32(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestQ5SpecialBlocks covers the blocks the 32-value formats treat apart:
// all zeros (d = 0, stored as zero scale), a constant (Q5_1's d = 0 with
// the constant as its min; Q5_0's largest magnitude maps to -16), and a
// block whose largest magnitude is positive, which Q5_0 stores with a
// negative d.
func TestQ5SpecialBlocks(t *testing.T) {
	fill := func(f func(i int) float32) []float32 {
		x := make([]float32, 32)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	for _, tc := range []struct {
		name string
		x    []float32
	}{
		{"zeros", fill(func(int) float32 { return 0 })},
		{"constant", fill(func(int) float32 { return 3 })},
		{"negative constant", fill(func(int) float32 { return -2 })},
		// 16 is the largest magnitude (Q5_0: d = -1) and -15 the minimum
		// (Q5_1: d = 31/31 = 1): integers lie on both grids.
		{"positive peak", fill(func(i int) float32 {
			switch i {
			case 7:
				return 16
			case 20:
				return -15
			}
			return float32(i%5) - 2
		})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, typ := range []Type{TypeQ5_0, TypeQ5_1} {
				b, _ := Encode(nil, typ, tc.x)
				y, _ := Decode(nil, typ, b)
				// Every value here lies on the grid of its block: exact.
				if !equalF32(y, tc.x) {
					t.Errorf("%v: got %v, want %v", typ, y, tc.x)
				}
			}
		})
	}
}
