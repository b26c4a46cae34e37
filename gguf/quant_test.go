package gguf

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

func TestF16(t *testing.T) {
	for _, tc := range []struct {
		f float32
		h uint16
	}{
		{0, 0x0000}, {float32(math.Copysign(0, -1)), 0x8000}, {1, 0x3c00}, {-2, 0xc000},
		{0.5, 0x3800}, {65504, 0x7bff}, {65520, 0x7c00}, {1e6, 0x7c00},
		{float32(math.Inf(-1)), 0xfc00}, {6.103515625e-05, 0x0400}, // smallest normal
		{5.960464477539063e-08, 0x0001},  // smallest subnormal
		{2.9802322387695312e-08, 0x0000}, // half of it: ties to even (0)
		{8.940696716308594e-08, 0x0002},  // 1.5 subnormal steps: ties to even (2)
		{1.0009765625, 0x3c01},           // 1 + 2^-10
		{1.00048828125, 0x3c00},          // 1 + 2^-11: tie, rounds to even
		{1.00146484375, 0x3c02},          // 1 + 3*2^-11: tie, rounds up to even
		{0.1, 0x2e66}, {3.14159265, 0x4248},
	} {
		if got := F32ToF16(tc.f); got != tc.h {
			t.Errorf("F32ToF16(%g): got %#04x, want %#04x", tc.f, got, tc.h)
		}
	}
	if h := F32ToF16(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("F32ToF16(NaN): got %#04x, want a NaN", h)
	}
	// Every finite half survives a round trip through float32.
	for h := 0; h < 1<<16; h++ {
		if h&0x7c00 == 0x7c00 {
			continue
		}
		if got := F32ToF16(F16ToF32(uint16(h))); got != uint16(h) {
			t.Fatalf("round trip %#04x: got %#04x", h, got)
		}
	}
}

func TestQ8_0Known(t *testing.T) {
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j) - 16
	}
	x[0], x[1], x[2], x[3] = 127, -127, 63.5, -2.5 // d = 1; ties round away from zero
	b := EncodeQ8_0(nil, x)
	if len(b) != BlockQ8_0Bytes {
		t.Fatalf("len: got %d, want %d", len(b), BlockQ8_0Bytes)
	}
	if d := binary.LittleEndian.Uint16(b); d != 0x3c00 {
		t.Errorf("scale: got %#04x, want 0x3c00 (1.0)", d)
	}
	want := []int8{127, -127, 64, -3}
	for j, w := range want {
		if got := int8(b[2+j]); got != w {
			t.Errorf("q[%d] for %g: got %d, want %d", j, x[j], got, w)
		}
	}
	for j := 4; j < 32; j++ {
		if got := int8(b[2+j]); got != int8(j-16) {
			t.Errorf("q[%d]: got %d, want %d", j, got, j-16)
		}
	}
	zero := EncodeQ8_0(nil, make([]float32, 32))
	for i, v := range zero {
		if v != 0 {
			t.Fatalf("all-zero block byte %d: got %d, want 0", i, v)
		}
	}
}

func TestQ4_0Known(t *testing.T) {
	// x[j] = j%16 - 8: the first -8 has the largest magnitude, so d = -8/-8
	// = 1 and q = x+8 = j%16; byte j holds element j (low) and j+16 (high).
	x := make([]float32, 32)
	for j := range x {
		x[j] = float32(j%16) - 8
	}
	b := EncodeQ4_0(nil, x)
	if len(b) != BlockQ4_0Bytes {
		t.Fatalf("len: got %d, want %d", len(b), BlockQ4_0Bytes)
	}
	if d := binary.LittleEndian.Uint16(b); d != 0x3c00 {
		t.Errorf("scale: got %#04x, want 0x3c00", d)
	}
	for j := 0; j < 16; j++ {
		if got, want := b[2+j], byte(j|j<<4); got != want {
			t.Errorf("byte %d: got %#02x, want %#02x", j, got, want)
		}
	}
	// Low and high nibbles hold different halves: elements 0..15 and 16..31.
	y := make([]float32, 32)
	y[0], y[16] = -8, 4 // d = 1: q(y0)=0, q(y16)=12, others 8
	b = EncodeQ4_0(nil, y)
	if got := b[2]; got != 0xc0 {
		t.Errorf("byte 0: got %#02x, want 0xc0 (low=elem0 q0, high=elem16 q12)", got)
	}
	if got := b[3]; got != 0x88 {
		t.Errorf("byte 1: got %#02x, want 0x88", got)
	}
	// A positive extreme gives a negative scale; it decodes exactly.
	z := make([]float32, 32)
	z[5] = 8
	b = EncodeQ4_0(nil, z)
	dec, _ := Decode(nil, TypeQ4_0, b)
	if dec[5] != 8 || dec[0] != 0 {
		t.Errorf("decode: got %g %g, want 8 0", dec[5], dec[0])
	}
}

// TestRoundTripError checks decode(encode(x)) against each type's error bound.
func TestRoundTripError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, 32*64)
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	for _, tc := range []struct {
		t Type
		// maximum error relative to the block's largest magnitude
		tol float64
	}{
		{TypeF32, 0}, {TypeF16, 1.0 / 1024}, {TypeQ8_0, 0.5/127 + 1e-3}, {TypeQ4_0, 1.0/8 + 1e-3},
		// Q4_0 and Q5_0 clamp the top level: a full step of amax/8 or
		// amax/16 at the positive end when the largest magnitude is negative.
		{TypeQ5_0, 1.0/16 + 1e-3},
		// Half a step of (max-min)/31 ≤ 2·amax/31, plus the f16 rounding of
		// d and the min.
		{TypeQ5_1, 1.0/31 + 2e-3},
	} {
		b, err := Encode(nil, tc.t, x)
		if err != nil {
			t.Fatal(err)
		}
		if rb, _ := tc.t.RowBytes(uint64(len(x))); uint64(len(b)) != rb {
			t.Errorf("%v: encoded %d bytes, want %d", tc.t, len(b), rb)
		}
		y, err := Decode(nil, tc.t, b)
		if err != nil {
			t.Fatal(err)
		}
		for blk := 0; blk < len(x); blk += 32 {
			var amax float64
			for _, v := range x[blk : blk+32] {
				amax = max(amax, math.Abs(float64(v)))
			}
			for i := blk; i < blk+32; i++ {
				if e := math.Abs(float64(x[i] - y[i])); e > tc.tol*amax {
					t.Fatalf("%v: element %d: got %g, want %g ± %g", tc.t, i, y[i], x[i], tc.tol*amax)
				}
			}
		}
	}
	if _, err := Encode(nil, TypeQ8_0, x[:31]); err == nil {
		t.Error("Encode(q8_0, 31 values): got nil error, want one")
	}
	if _, err := Encode(nil, TypeQ2_K, x); err == nil {
		t.Error("Encode(q2_K): got nil error, want one")
	}
}

func benchEncode(b *testing.B, t Type) {
	x := make([]float32, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range x {
		x[i] = float32(r.NormFloat64())
	}
	dst := make([]byte, 0, 4*len(x))
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(x)))
	for b.Loop() {
		dst, _ = Encode(dst[:0], t, x)
	}
	b.ReportMetric(float64(len(x))*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mvalues/s")
}

func BenchmarkEncodeF16(b *testing.B)  { benchEncode(b, TypeF16) }
func BenchmarkEncodeQ8_0(b *testing.B) { benchEncode(b, TypeQ8_0) }
func BenchmarkEncodeQ4_0(b *testing.B) { benchEncode(b, TypeQ4_0) }
func BenchmarkEncodeQ5_0(b *testing.B) { benchEncode(b, TypeQ5_0) }
func BenchmarkEncodeQ5_1(b *testing.B) { benchEncode(b, TypeQ5_1) }
