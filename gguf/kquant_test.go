package gguf

import (
	"bytes"
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

func TestKQuantBlockSizes(t *testing.T) {
	x := make([]float32, 3*QK_K)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	for _, tc := range []struct {
		t     Type
		block int
	}{{TypeQ4_K, 144}, {TypeQ5_K, 176}, {TypeQ6_K, 210}} {
		t.Run(tc.t.String(), func(t *testing.T) {
			if got := int(tc.t.BlockBytes()); got != tc.block {
				t.Errorf("BlockBytes: got %d, want %d", got, tc.block)
			}
			if got := tc.t.BlockSize(); got != QK_K {
				t.Errorf("BlockSize: got %d, want %d", got, QK_K)
			}
			b, err := Encode(nil, tc.t, x)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) != 3*tc.block {
				t.Errorf("encoded %d values: got %d bytes, want %d", len(x), len(b), 3*tc.block)
			}
			y, err := Decode(nil, tc.t, b)
			if err != nil || len(y) != len(x) {
				t.Errorf("Decode: got %d values, %v, want %d", len(y), err, len(x))
			}
			for _, n := range []int{1, QK_K - 32, QK_K + 32} {
				if _, err := Encode(nil, tc.t, x[:n]); err == nil {
					t.Errorf("Encode(%d values): got nil error, want one", n)
				}
			}
			if _, err := Decode(nil, tc.t, b[:tc.block-1]); err == nil {
				t.Errorf("Decode(%d bytes): got nil error, want one", tc.block-1)
			}
		})
	}
	if BlockQ4_KBytes != 144 || BlockQ5_KBytes != 176 || BlockQ6_KBytes != 210 {
		t.Errorf("block sizes: got %d %d %d, want 144 176 210", BlockQ4_KBytes, BlockQ5_KBytes, BlockQ6_KBytes)
	}
}

// TestScaleMinK4 checks the packing of Q4_K's eight 6-bit scales and mins
// into 12 bytes against a vector worked by hand from ggml's layout, and that
// get_scale_min_k4's unpacking inverts it for every value.
func TestScaleMinK4(t *testing.T) {
	ls := [8]uint8{0, 1, 2, 3, 16, 32, 48, 63}
	lm := [8]uint8{63, 62, 61, 60, 17, 33, 49, 0}
	want := [12]byte{0x40, 0x81, 0xc2, 0xc3, 0x7f, 0xbe, 0xfd, 0x3c, 0x10, 0x10, 0x10, 0x0f}
	if got := packScaleMinK4(ls, lm); got != want {
		t.Errorf("packScaleMinK4: got % x, want % x", got, want)
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		for j := range ls {
			ls[j], lm[j] = uint8(r.IntN(64)), uint8(r.IntN(64))
		}
		sc := packScaleMinK4(ls, lm)
		for j := range ls {
			if s, m := scaleMinK4(j, sc[:]); s != ls[j] || m != lm[j] {
				t.Fatalf("sub-block %d of % x: got scale %d min %d, want %d %d", j, sc, s, m, ls[j], lm[j])
			}
		}
	}
}

// TestQ4_KKnown encodes a super-block that four bits represent exactly: each
// sub-block holds -8..7, so every sub-block's scale is 1 and min 8, both
// stored as 63 (all twelve scale bytes 0xff) against d = 1/63 and
// dmin = 8/63, and value i is stored as i%16.
func TestQ4_KKnown(t *testing.T) {
	x := make([]float32, QK_K)
	for i := range x {
		x[i] = float32(i%16) - 8
	}
	b := EncodeQ4_K(nil, x)
	if len(b) != BlockQ4_KBytes {
		t.Fatalf("len: got %d, want %d", len(b), BlockQ4_KBytes)
	}
	if d := binary.LittleEndian.Uint16(b); d != 0x2410 {
		t.Errorf("d: got %#04x, want 0x2410 (1/63)", d)
	}
	if dmin := binary.LittleEndian.Uint16(b[2:]); dmin != 0x3010 {
		t.Errorf("dmin: got %#04x, want 0x3010 (8/63)", dmin)
	}
	if sc := b[4:16]; !bytes.Equal(sc, bytes.Repeat([]byte{0xff}, 12)) {
		t.Errorf("scales: got % x, want 12 × ff", sc)
	}
	// Per 64 values, byte l holds value l (low nibble) and l+32 (high).
	for l, q := range b[16:] {
		if want := byte(l%16 | (l%16)<<4); q != want {
			t.Fatalf("qs[%d]: got %#02x, want %#02x", l, q, want)
		}
	}
	y, _ := Decode(nil, TypeQ4_K, b)
	for i := range x {
		if math.Abs(float64(y[i]-x[i])) > 2e-3 {
			t.Fatalf("value %d: got %g, want %g ± 2e-3", i, y[i], x[i])
		}
	}
	// The nibble layout, seen from the values: one outlier at index 40 of
	// the first 64 lands in the high nibble of byte 8.
	x[40] = 7 + 8 // one step above the others' max: sub-block 1's scale grows
	b = EncodeQ4_K(nil, x)
	if hi := b[16+8] >> 4; hi != 15 {
		t.Errorf("value 40: got level %d in the high nibble of byte 8, want 15", hi)
	}
}

// TestQ6_KKnown encodes a super-block that six bits represent exactly: each
// sub-block of 16 starts with -32 (its largest magnitude) followed by values
// in -31..31, so every sub-block's scale is 1, stored as -128 against
// d = -1/128, and value x is stored as x+32. The expected ql/qh bytes are
// built from the format's description, not the encoder's loop.
func TestQ6_KKnown(t *testing.T) {
	x := make([]float32, QK_K)
	for i := range x {
		if i%16 == 0 {
			x[i] = -32
		} else {
			x[i] = float32((7*(i%16)+3*(i/16))%63 - 31)
		}
	}
	b := EncodeQ6_K(nil, x)
	if len(b) != BlockQ6_KBytes {
		t.Fatalf("len: got %d, want %d", len(b), BlockQ6_KBytes)
	}
	var ql [128]byte
	var qh [64]byte
	for k, v := range x {
		q := byte(int(v) + 32)
		n, r := k/128, k%128
		l, g := r%32, r/32 // g: which of the four values sharing ql/qh bytes
		ql[64*n+l+32*(g&1)] |= (q & 0x0f) << (4 * (g >> 1))
		qh[32*n+l] |= (q >> 4) << (2 * g)
	}
	if !bytes.Equal(b[:128], ql[:]) {
		t.Errorf("ql: got % x, want % x", b[:128], ql)
	}
	if !bytes.Equal(b[128:192], qh[:]) {
		t.Errorf("qh: got % x, want % x", b[128:192], qh)
	}
	if sc := b[192:208]; !bytes.Equal(sc, bytes.Repeat([]byte{0x80}, 16)) {
		t.Errorf("scales: got % x, want 16 × 80 (-128)", sc)
	}
	if d := binary.LittleEndian.Uint16(b[208:]); d != 0xa000 {
		t.Errorf("d: got %#04x, want 0xa000 (-1/128)", d)
	}
	y, _ := Decode(nil, TypeQ6_K, b)
	for i := range x {
		if y[i] != x[i] {
			t.Fatalf("value %d: got %g, want %g exactly", i, y[i], x[i])
		}
	}
}

// TestKQuantSpecialBlocks covers blocks the fits treat apart: all zeros
// (stored as zero bytes), a positive constant (min clamped to 0), tiny
// values near GROUP_MAX_EPS, and a block of one sign.
func TestKQuantSpecialBlocks(t *testing.T) {
	fill := func(f func(i int) float32) []float32 {
		x := make([]float32, QK_K)
		for i := range x {
			x[i] = f(i)
		}
		return x
	}
	for _, tc := range []struct {
		name string
		x    []float32
		tol  float64 // absolute
	}{
		{"zeros", fill(func(int) float32 { return 0 }), 0},
		{"constant", fill(func(int) float32 { return 3.5 }), 3.5 / 500},
		{"negative constant", fill(func(int) float32 { return -2 }), 2.0 / 500},
		// Scales below f16's smallest subnormal round to 0: zeros come back.
		{"tiny", fill(func(i int) float32 { return float32(i%5) * 1e-20 }), 4e-20},
		{"positive ramp", fill(func(i int) float32 { return float32(i) / 256 }), 1.0 / 30},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, typ := range []Type{TypeQ4_K, TypeQ5_K, TypeQ6_K} {
				b, _ := Encode(nil, typ, tc.x)
				if tc.name == "zeros" && !bytes.Equal(b, make([]byte, len(b))) {
					t.Errorf("%v: got % x, want zero bytes", typ, b)
				}
				y, _ := Decode(nil, typ, b)
				for i := range y {
					if e := math.Abs(float64(y[i] - tc.x[i])); e > tc.tol {
						t.Fatalf("%v value %d: got %g, want %g ± %g", typ, i, y[i], tc.x[i], tc.tol)
					}
				}
			}
		})
	}
}

// TestKQuantError checks decode(encode(x)) on Gaussian data against bounds
// a few percent above what ggml's reference quantizers give on the same
// data (Q4_K 0.0711, Q5_K 0.0363, Q6_K 0.0177 RMSE for unit variance, with which these
// encoders agree byte for byte when ggml is built without fused
// multiply-add), and against the bar of ggml's test-quantize-fns
// (sqrt(Σ(x-y)²)/n < 0.002 on 0.1 + 2cos(i)). Q4_0 and Q8_0 are measured
// alongside, so the bounds are seen to separate the formats.
func TestKQuantError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	gauss := make([]float32, QK_K*256)
	for i := range gauss {
		gauss[i] = float32(r.NormFloat64())
	}
	cos := make([]float32, 32*128)
	for i := range cos {
		cos[i] = float32(0.1 + 2*math.Cos(float64(i)))
	}
	for _, tc := range []struct {
		t       Type
		maxRMSE float64 // Gaussian, unit variance
		maxAbs  float64 // largest error relative to the super-block's largest magnitude
	}{
		{TypeQ4_K, 0.074, 0.1},
		{TypeQ5_K, 0.0375, 0.05},
		{TypeQ6_K, 0.0185, 0.025},
		{TypeQ4_0, 0.1, 0.13}, // for scale: K-quants must beat it
		{TypeQ8_0, 0.01, 0.005},
	} {
		t.Run(tc.t.String(), func(t *testing.T) {
			b, _ := Encode(nil, tc.t, gauss)
			y, _ := Decode(nil, tc.t, b)
			var sum float64
			for i := range y {
				d := float64(y[i] - gauss[i])
				sum += d * d
			}
			rmse := math.Sqrt(sum / float64(len(y)))
			t.Logf("RMSE %.4f", rmse)
			if rmse > tc.maxRMSE {
				t.Errorf("RMSE: got %.4f, want at most %.4f", rmse, tc.maxRMSE)
			}
			for blk := 0; blk < len(y); blk += QK_K {
				var amax float64
				for _, v := range gauss[blk : blk+QK_K] {
					amax = max(amax, math.Abs(float64(v)))
				}
				for i := blk; i < blk+QK_K; i++ {
					if e := math.Abs(float64(y[i] - gauss[i])); e > tc.maxAbs*amax {
						t.Fatalf("value %d: got %g, want %g ± %g", i, y[i], gauss[i], tc.maxAbs*amax)
					}
				}
			}
			b, _ = Encode(nil, tc.t, cos)
			y, _ = Decode(nil, tc.t, b)
			sum = 0
			for i := range y {
				d := float64(y[i] - cos[i])
				sum += d * d
			}
			if e := math.Sqrt(sum) / float64(len(y)); e > 0.002 {
				t.Errorf("test-quantize-fns error: got %.5f, want below 0.002", e)
			}
		})
	}
}

func BenchmarkEncodeQ4_K(b *testing.B) { benchEncode(b, TypeQ4_K) }
func BenchmarkEncodeQ5_K(b *testing.B) { benchEncode(b, TypeQ5_K) }
func BenchmarkEncodeQ6_K(b *testing.B) { benchEncode(b, TypeQ6_K) }
