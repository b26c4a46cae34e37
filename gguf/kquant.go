package gguf

import (
	"encoding/binary"
	"math"
)

// K-quant block layouts, as in ggml-common.h. A K-quant super-block holds
// QK_K values in sub-blocks, each with its own scale quantized against one
// f16 scale per super-block, which is how Q4_K_M files spend 4.5 and 6.5625
// bits per weight.
const (
	// QK_K is the number of values in a K-quant super-block.
	QK_K = 256
	// kScaleSize is K_SCALE_SIZE: eight 6-bit scales and eight 6-bit mins.
	kScaleSize = 12
	// BlockQ4_KBytes is sizeof(block_q4_K): f16 d, f16 dmin, the 6-bit
	// scales and mins of its eight sub-blocks of 32 packed into 12 bytes,
	// and 128 bytes of nibbles.
	BlockQ4_KBytes = 2 + 2 + kScaleSize + QK_K/2
	// BlockQ6_KBytes is sizeof(block_q6_K): 128 bytes of low nibbles, 64
	// bytes of high 2-bit pairs, the int8 scales of its sixteen sub-blocks
	// of 16, and f16 d.
	BlockQ6_KBytes = QK_K/2 + QK_K/4 + QK_K/16 + 2
)

// groupMaxEps is GROUP_MAX_EPS: a group whose largest magnitude is below it
// is stored as zeros.
const groupMaxEps = 1e-15

// nearestInt rounds to the nearest integer, ties to even, the way ggml's
// nearest_int does: adding 1.5·2^23 leaves the integer in the low mantissa
// bits. Like the C it is exact for |f| < 2^22; beyond that (and for NaN or
// infinity) it returns a deterministic value the callers clamp, so hostile
// input never panics.
func nearestInt(f float32) int32 {
	v := f + 12582912
	return int32(math.Float32bits(v)&0x007fffff) - 0x00400000
}

// EncodeQ4_K appends src as Q4_K super-blocks and returns the extended
// slice. len(src) must be a multiple of QK_K (256). Each super-block is
// eight sub-blocks of 32, each stored as x ≈ d·sc·q - dmin·m with q in 0..15
// and 6-bit sc and m; the sub-block scale and min are fitted by ggml's
// make_qkx2_quants (weights √mean(x²)+|x|, a grid of 21 trial scales, a
// weighted least-squares refit of scale and min for each), as
// quantize_row_q4_K_ref does, which is what llama-quantize runs without an
// importance matrix. Arithmetic is float32 with every operation rounded, so
// results match a C build without fused multiply-add; they are not promised
// to be byte-identical to any particular ggml build.
func EncodeQ4_K(dst []byte, src []float32) []byte {
	var levels [QK_K]uint8
	for b := 0; b+QK_K <= len(src); b += QK_K {
		d, dmin, sc := fitScaleMinK(src[b:b+QK_K], 15, -1, 20, &levels)
		dst = binary.LittleEndian.AppendUint16(dst, d)
		dst = binary.LittleEndian.AppendUint16(dst, dmin)
		dst = append(dst, sc[:]...)
		// Each 64 values share 32 bytes: value l in the low nibble of byte l,
		// value l+32 in the high nibble.
		for j := 0; j < QK_K; j += 64 {
			for l := 0; l < 32; l++ {
				dst = append(dst, levels[j+l]|levels[j+l+32]<<4)
			}
		}
	}
	return dst
}

// fitScaleMinK quantizes one super-block x of QK_K values as Q4_K and Q5_K
// do (quantize_row_q4_K_ref, quantize_row_q5_K_ref): each sub-block of 32
// is fitted as x ≈ scale·L - min with L in 0..nmax by makeQKX2Quants (trial
// inverse scales from rmin in nstep steps of 0.1), the sixteen scales and
// mins are quantized to 6 bits against the f16 super-scales d and dmin, and
// the levels are then recomputed against the scales as stored, so the
// rounding of the 6-bit scales and of d and dmin is compensated by the
// levels. It returns d, dmin and the packed scales; levels receives the
// values' levels.
func fitScaleMinK(x []float32, nmax int32, rmin float32, nstep int, levels *[QK_K]uint8) (d, dmin uint16, sc [kScaleSize]byte) {
	var (
		aux     [32]uint8
		weights [32]float32
		scales  [QK_K / 32]float32
		mins    [QK_K / 32]float32
		ls, lm  [QK_K / 32]uint8
	)
	var maxScale, maxMin float32 // scales and mins are ≥ 0: the min is subtracted
	for j := range scales {
		xs := x[32*j : 32*j+32]
		var sumX2 float32
		for _, v := range xs {
			sumX2 += float32(v * v)
		}
		av := float32(math.Sqrt(float64(sumX2 / 32)))
		for l, v := range xs {
			weights[l] = av + abs32(v)
		}
		scales[j], mins[j] = makeQKX2Quants(nmax, xs, weights[:], levels[32*j:32*j+32], aux[:], rmin, 0.1, nstep)
		if scales[j] > maxScale {
			maxScale = scales[j]
		}
		if mins[j] > maxMin {
			maxMin = mins[j]
		}
	}
	var invScale, invMin float32
	if maxScale > 0 {
		invScale = 63 / maxScale
	}
	if maxMin > 0 {
		invMin = 63 / maxMin
	}
	for j := range scales {
		// As in C, the int is truncated to a byte before the clamp.
		ls[j] = min(63, uint8(nearestInt(invScale*scales[j])))
		lm[j] = min(63, uint8(nearestInt(invMin*mins[j])))
	}
	sc = packScaleMinK4(ls, lm)
	d = F32ToF16(maxScale / 63)
	dmin = F32ToF16(maxMin / 63)

	df, dminf := F16ToF32(d), F16ToF32(dmin)
	for j := range scales {
		s, m := scaleMinK4(j, sc[:])
		sd := df * float32(s)
		if sd == 0 {
			continue
		}
		dm := dminf * float32(m)
		for i := 32 * j; i < 32*j+32; i++ {
			levels[i] = uint8(clamp(nearestInt((x[i]+dm)/sd), 0, nmax))
		}
	}
	return d, dmin, sc
}

// makeQKX2Quants fits x ≈ scale·L - theMin with L in 0..nmax, minimizing the
// weighted squared error over nstep+1 trial inverse scales
// (rmin + rdelta·is + nmax)/(max - min), each refitted by weighted least
// squares, as ggml's make_qkx2_quants does (use_mad false). L receives the
// levels; aux is scratch of len(x). theMin is ≥ 0: a min above zero is
// clamped to zero, so the fit never needs a negative offset.
func makeQKX2Quants(nmax int32, x, weights []float32, L, aux []uint8, rmin, rdelta float32, nstep int) (scale, theMin float32) {
	lo, hi := x[0], x[0]
	sumW := weights[0]
	sumX := float32(sumW * x[0])
	for i := 1; i < len(x); i++ {
		if x[i] < lo {
			lo = x[i]
		}
		if x[i] > hi {
			hi = x[i]
		}
		w := weights[i]
		sumW += w
		sumX += float32(w * x[i])
	}
	if lo > 0 {
		lo = 0
	}
	if hi == lo {
		clear(L[:len(x)])
		return 0, -lo
	}
	fmax := float32(nmax)
	iscale := fmax / (hi - lo)
	scale = 1 / iscale
	var bestErr float32
	for i, v := range x {
		L[i] = uint8(clamp(nearestInt(iscale*(v-lo)), 0, nmax))
		diff := float32(scale*float32(L[i])) + lo - v
		bestErr += float32(weights[i] * float32(diff*diff))
	}
	for is := 0; is <= nstep; is++ {
		iscale = (rmin + float32(rdelta*float32(is)) + fmax) / (hi - lo)
		var sumL, sumL2, sumXL float32
		for i, v := range x {
			l := clamp(nearestInt(iscale*(v-lo)), 0, nmax)
			aux[i] = uint8(l)
			w, fl := weights[i], float32(l)
			sumL += float32(w * fl)
			sumL2 += float32(float32(w*fl) * fl)
			sumXL += float32(float32(w*fl) * v)
		}
		det := float32(sumW*sumL2) - float32(sumL*sumL)
		if det <= 0 {
			continue
		}
		thisScale := (float32(sumW*sumXL) - float32(sumX*sumL)) / det
		thisMin := (float32(sumL2*sumX) - float32(sumL*sumXL)) / det
		if thisMin > 0 {
			thisMin = 0
			thisScale = sumXL / sumL2
		}
		var curErr float32
		for i, v := range x {
			diff := float32(thisScale*float32(aux[i])) + thisMin - v
			curErr += float32(weights[i] * float32(diff*diff))
		}
		if curErr < bestErr {
			copy(L[:len(x)], aux[:len(x)])
			bestErr, scale, lo = curErr, thisScale, thisMin
		}
	}
	return scale, -lo
}

// packScaleMinK4 packs eight 6-bit scales and mins into K_SCALE_SIZE bytes:
// bytes 0-3 hold scales 0-3 and bytes 4-7 mins 0-3 in their low six bits;
// bytes 8-11 hold the low nibbles of scale j+4 (low) and min j+4 (high),
// whose top two bits go to the top of bytes j and j+4.
func packScaleMinK4(ls, lm [8]uint8) [kScaleSize]byte {
	var sc [kScaleSize]byte
	for j := 0; j < 4; j++ {
		sc[j] = ls[j] | (ls[j+4]>>4)<<6
		sc[j+4] = lm[j] | (lm[j+4]>>4)<<6
		sc[j+8] = ls[j+4]&0x0f | (lm[j+4]&0x0f)<<4
	}
	return sc
}

// scaleMinK4 unpacks the scale and min of sub-block j (ggml's
// get_scale_min_k4).
func scaleMinK4(j int, q []byte) (sc, m uint8) {
	if j < 4 {
		return q[j] & 63, q[j+4] & 63
	}
	return q[j+4]&0x0f | (q[j-4]>>6)<<4, q[j+4]>>4 | (q[j]>>6)<<4
}

// EncodeQ6_K appends src as Q6_K super-blocks and returns the extended
// slice. len(src) must be a multiple of QK_K (256). Each super-block is
// sixteen sub-blocks of 16, each stored as x ≈ d·sc·(q-32) with q in 0..63
// and an int8 sc; the sub-block scale is fitted by ggml's make_qx_quants
// (weights x², nineteen trial scales, the best least-squares fit kept), as
// quantize_row_q6_K_ref does. Arithmetic is float32 with every operation
// rounded, as for EncodeQ4_K.
func EncodeQ6_K(dst []byte, src []float32) []byte {
	var (
		levels [QK_K]int8
		scales [QK_K / 16]float32
	)
	for b := 0; b+QK_K <= len(src); b += QK_K {
		x := src[b : b+QK_K]
		var maxScale, maxAbsScale float32
		for ib := range scales {
			scales[ib] = makeQXQuants(32, x[16*ib:16*ib+16], levels[16*ib:16*ib+16])
			if a := abs32(scales[ib]); a > maxAbsScale {
				maxAbsScale, maxScale = a, scales[ib]
			}
		}
		if maxAbsScale < groupMaxEps {
			dst = append(dst, zeroQ6_K[:]...)
			continue
		}
		// The largest scale maps to -128, so its sign is carried by d.
		iscale := -128 / maxScale
		d := F32ToF16(1 / iscale)
		var sc [QK_K / 16]int8
		for ib := range scales {
			sc[ib] = int8(min(127, nearestInt(iscale*scales[ib])))
		}
		df := F16ToF32(d)
		for j := range sc {
			sd := df * float32(sc[j])
			if sd == 0 {
				continue
			}
			for i := 16 * j; i < 16*j+16; i++ {
				levels[i] = int8(clamp(nearestInt(x[i]/sd), -32, 31) + 32)
			}
		}

		// Each 128 values use 64 bytes of ql and 32 of qh: values l, l+32,
		// l+64, l+96 put their low nibbles in ql[l] (low), ql[l+32] (low),
		// ql[l] (high), ql[l+32] (high), and their top two bits in qh[l] at
		// bits 0, 2, 4 and 6.
		var ql [QK_K / 2]byte
		var qh [QK_K / 4]byte
		for n := 0; n < QK_K/128; n++ {
			q := levels[128*n : 128*n+128]
			for l := 0; l < 32; l++ {
				q1, q2, q3, q4 := uint8(q[l]), uint8(q[l+32]), uint8(q[l+64]), uint8(q[l+96])
				ql[64*n+l] = q1&0x0f | (q3&0x0f)<<4
				ql[64*n+l+32] = q2&0x0f | (q4&0x0f)<<4
				qh[32*n+l] = q1>>4 | (q2>>4)<<2 | (q3>>4)<<4 | (q4>>4)<<6
			}
		}
		dst = append(dst, ql[:]...)
		dst = append(dst, qh[:]...)
		for _, s := range sc {
			dst = append(dst, byte(s))
		}
		dst = binary.LittleEndian.AppendUint16(dst, d)
	}
	return dst
}

// zeroQ6_K is the block of a super-block whose values are all (nearly) zero.
var zeroQ6_K [BlockQ6_KBytes]byte

// makeQXQuants fits x ≈ scale·(L-nmax) with L-nmax in -nmax..nmax-1, as
// ggml's make_qx_quants does with rmse_type 1 and no importance weights: the
// value of largest magnitude maps to -nmax, then nineteen nearby inverse
// scales are tried and the one maximizing (Σw·x·l)²/Σw·l² (w = x²) kept,
// with its least-squares scale.
func makeQXQuants(nmax int32, x []float32, L []int8) float32 {
	var maxv, amax float32
	for _, v := range x {
		if a := abs32(v); a > amax {
			amax, maxv = a, v
		}
	}
	if amax < groupMaxEps {
		clear(L[:len(x)])
		return 0
	}
	fmax := float32(nmax)
	iscale := -fmax / maxv
	var sumLX, sumL2 float32
	for i, v := range x {
		l := clamp(nearestInt(iscale*v), -nmax, nmax-1)
		L[i] = int8(l + nmax)
		w, fl := float32(v*v), float32(l)
		sumLX += float32(float32(w*v) * fl)
		sumL2 += float32(float32(w*fl) * fl)
	}
	var scale float32
	if sumL2 != 0 {
		scale = sumLX / sumL2
	}
	best := scale * sumLX
	for is := -9; is <= 9; is++ {
		if is == 0 {
			continue
		}
		iscale = -(fmax + float32(0.1*float32(is))) / maxv
		sumLX, sumL2 = 0, 0
		for _, v := range x {
			l := clamp(nearestInt(iscale*v), -nmax, nmax-1)
			w, fl := float32(v*v), float32(l)
			sumLX += float32(float32(w*v) * fl)
			sumL2 += float32(float32(w*fl) * fl)
		}
		if sumL2 > 0 && float32(sumLX*sumLX) > float32(best*sumL2) {
			for i, v := range x {
				L[i] = int8(clamp(nearestInt(iscale*v), -nmax, nmax-1) + nmax)
			}
			scale = sumLX / sumL2
			best = scale * sumLX
		}
	}
	return scale
}

func clamp(v, lo, hi int32) int32 { return max(lo, min(hi, v)) }

// decodeQ4_K appends the values of the Q4_K blocks in src, whose length is a
// multiple of BlockQ4_KBytes, as ggml's dequantize_row_q4_K computes them.
func decodeQ4_K(dst []float32, src []byte) []float32 {
	le := binary.LittleEndian
	for b := 0; b < len(src); b += BlockQ4_KBytes {
		blk := src[b : b+BlockQ4_KBytes]
		d := F16ToF32(le.Uint16(blk))
		dmin := F16ToF32(le.Uint16(blk[2:]))
		sc := blk[4 : 4+kScaleSize]
		q := blk[4+kScaleSize:]
		for j := 0; j < QK_K/64; j++ {
			s1, m1 := scaleMinK4(2*j, sc)
			s2, m2 := scaleMinK4(2*j+1, sc)
			d1, o1 := d*float32(s1), dmin*float32(m1)
			d2, o2 := d*float32(s2), dmin*float32(m2)
			qs := q[32*j : 32*j+32]
			for _, v := range qs {
				dst = append(dst, float32(d1*float32(v&0x0f))-o1)
			}
			for _, v := range qs {
				dst = append(dst, float32(d2*float32(v>>4))-o2)
			}
		}
	}
	return dst
}

// decodeQ6_K appends the values of the Q6_K blocks in src, whose length is a
// multiple of BlockQ6_KBytes, as ggml's dequantize_row_q6_K computes them.
func decodeQ6_K(dst []float32, src []byte) []float32 {
	for b := 0; b < len(src); b += BlockQ6_KBytes {
		blk := src[b : b+BlockQ6_KBytes]
		ql := blk[:QK_K/2]
		qh := blk[QK_K/2 : QK_K/2+QK_K/4]
		sc := blk[QK_K/2+QK_K/4 : QK_K/2+QK_K/4+QK_K/16]
		d := F16ToF32(binary.LittleEndian.Uint16(blk[BlockQ6_KBytes-2:]))
		start := len(dst)
		dst = append(dst, make([]float32, QK_K)...)
		y := dst[start:]
		for n := 0; n < QK_K/128; n++ {
			l4, h2, s8, y128 := ql[64*n:], qh[32*n:], sc[8*n:], y[128*n:]
			for l := 0; l < 32; l++ {
				is := l / 16
				q1 := int32(l4[l]&0x0f|(h2[l]>>0&3)<<4) - 32
				q2 := int32(l4[l+32]&0x0f|(h2[l]>>2&3)<<4) - 32
				q3 := int32(l4[l]>>4|(h2[l]>>4&3)<<4) - 32
				q4 := int32(l4[l+32]>>4|(h2[l]>>6&3)<<4) - 32
				y128[l] = float32(d*float32(int8(s8[is]))) * float32(q1)
				y128[l+32] = float32(d*float32(int8(s8[is+2]))) * float32(q2)
				y128[l+64] = float32(d*float32(int8(s8[is+4]))) * float32(q3)
				y128[l+96] = float32(d*float32(int8(s8[is+6]))) * float32(q4)
			}
		}
	}
	return dst
}
