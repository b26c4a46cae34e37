package gguf

import (
	"encoding/binary"
	"math"
)

// Five-bit block layouts, as in ggml-common.h. llama-quantize writes Q5_K
// in its mixes (Q4_K_M's attn_output of 8-expert models) and falls back to
// Q5_0 and Q5_1 for rows that are not whole K-quant super-blocks, so a
// generated Q4_K_M file needs all three.
const (
	// QK5_0 is the number of values in a Q5_0 block.
	QK5_0 = 32
	// QK5_1 is the number of values in a Q5_1 block.
	QK5_1 = 32
	// BlockQ5_0Bytes is sizeof(block_q5_0): an f16 scale, the fifth bits of
	// its 32 values in a little-endian uint32, and 16 bytes of nibbles.
	BlockQ5_0Bytes = 2 + 4 + QK5_0/2
	// BlockQ5_1Bytes is sizeof(block_q5_1): an f16 scale and an f16 min,
	// then qh and qs as in Q5_0.
	BlockQ5_1Bytes = 2 + 2 + 4 + QK5_1/2
	// BlockQ5_KBytes is sizeof(block_q5_K): f16 d and dmin, Q4_K's packed
	// 6-bit scales and mins, 32 bytes of fifth bits and 128 of nibbles.
	BlockQ5_KBytes = 2 + 2 + kScaleSize + QK_K/8 + QK_K/2
)

// EncodeQ5_0 appends src as Q5_0 blocks, as ggml's quantize_row_q5_0_ref
// does: per 32 values, d = max/-16 where max is the value of largest
// magnitude, stored as f16; q = min(31, trunc(x/d+16.5)) and value =
// (q-16)·d. Byte j of qs holds the low four bits of element j (low nibble)
// and of element j+16 (high nibble); bit j of qh holds the fifth bit of
// element j. len(src) must be a multiple of 32.
func EncodeQ5_0(dst []byte, src []float32) []byte {
	for b := 0; b+QK5_0 <= len(src); b += QK5_0 {
		x := src[b : b+QK5_0]
		d := signedMax(x) / -16
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var qh uint32
		var qs [QK5_0 / 2]byte
		for j := 0; j < QK5_0/2; j++ {
			// The explicit conversions stop the compiler fusing the multiply
			// and add, so the sum rounds as in the reference C.
			q0 := min(31, uint8(int8(float32(x[j]*id)+16.5)))
			q1 := min(31, uint8(int8(float32(x[j+QK5_0/2]*id)+16.5)))
			qs[j] = q0&0x0f | (q1&0x0f)<<4
			qh |= uint32(q0>>4) << j
			qh |= uint32(q1>>4) << (j + QK5_0/2)
		}
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
		dst = binary.LittleEndian.AppendUint32(dst, qh)
		dst = append(dst, qs[:]...)
	}
	return dst
}

// EncodeQ5_1 appends src as Q5_1 blocks, as ggml's quantize_row_q5_1_ref
// does: per 32 values, m = min and d = (max-min)/31, both stored as f16;
// q = trunc((x-m)/d+0.5) and value = q·d + m, packed as in Q5_0. len(src)
// must be a multiple of 32.
func EncodeQ5_1(dst []byte, src []float32) []byte {
	for b := 0; b+QK5_1 <= len(src); b += QK5_1 {
		x := src[b : b+QK5_1]
		lo, hi := float32(math.MaxFloat32), float32(-math.MaxFloat32)
		for _, v := range x {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
		d := (hi - lo) / 31
		var id float32
		if d != 0 {
			id = 1 / d
		}
		var qh uint32
		var qs [QK5_1 / 2]byte
		for j := 0; j < QK5_1/2; j++ {
			// uint8 of a value in 0.5..31.5 truncates as C's (uint8_t) does;
			// the int32 step keeps out-of-range input (NaN, overflow) to a
			// fixed, harmless byte.
			q0 := uint8(int32(float32(float32(x[j]-lo)*id) + 0.5))
			q1 := uint8(int32(float32(float32(x[j+QK5_1/2]-lo)*id) + 0.5))
			qs[j] = q0&0x0f | (q1&0x0f)<<4
			qh |= uint32(q0>>4&1) << j
			qh |= uint32(q1>>4&1) << (j + QK5_1/2)
		}
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(lo))
		dst = binary.LittleEndian.AppendUint32(dst, qh)
		dst = append(dst, qs[:]...)
	}
	return dst
}

// EncodeQ5_K appends src as Q5_K super-blocks and returns the extended
// slice. len(src) must be a multiple of QK_K (256). It is Q4_K with five
// bits: eight sub-blocks of 32, x ≈ d·sc·q - dmin·m with q in 0..31, fitted
// as quantize_row_q5_K_ref does (make_qkx2_quants with sixteen trial scales
// from -0.5, against Q4_K's 21 from -1). Arithmetic is float32 with every
// operation rounded, as for EncodeQ4_K.
func EncodeQ5_K(dst []byte, src []float32) []byte {
	var levels [QK_K]uint8
	for b := 0; b+QK_K <= len(src); b += QK_K {
		d, dmin, sc := fitScaleMinK(src[b:b+QK_K], 31, -0.5, 15, &levels)
		dst = binary.LittleEndian.AppendUint16(dst, d)
		dst = binary.LittleEndian.AppendUint16(dst, dmin)
		dst = append(dst, sc[:]...)
		// Each 64 values n..n+63 share the 32 qh bytes at bits 2k (value
		// n+l) and 2k+1 (value n+l+32), k = n/64, and 32 qs bytes as in
		// Q4_K: value n+l low, n+l+32 high.
		var qh [QK_K / 8]byte
		var qs [QK_K / 2]byte
		for k := 0; k < QK_K/64; k++ {
			for l := 0; l < 32; l++ {
				q1, q2 := levels[64*k+l], levels[64*k+l+32]
				qs[32*k+l] = q1&0x0f | (q2&0x0f)<<4
				qh[l] |= (q1>>4)<<(2*k) | (q2>>4)<<(2*k+1)
			}
		}
		dst = append(dst, qh[:]...)
		dst = append(dst, qs[:]...)
	}
	return dst
}

// decodeQ5_0 appends the values of the Q5_0 blocks in src, whose length is
// a multiple of BlockQ5_0Bytes, as ggml's dequantize_row_q5_0 computes them.
func decodeQ5_0(dst []float32, src []byte) []float32 {
	le := binary.LittleEndian
	for b := 0; b < len(src); b += BlockQ5_0Bytes {
		d := F16ToF32(le.Uint16(src[b:]))
		qh := le.Uint32(src[b+2:])
		qs := src[b+6 : b+BlockQ5_0Bytes]
		for j := range qs {
			dst = append(dst, float32(int32(qs[j]&0x0f|uint8(qh>>j&1)<<4)-16)*d)
		}
		for j := range qs {
			dst = append(dst, float32(int32(qs[j]>>4|uint8(qh>>(j+16)&1)<<4)-16)*d)
		}
	}
	return dst
}

// decodeQ5_1 appends the values of the Q5_1 blocks in src, whose length is
// a multiple of BlockQ5_1Bytes, as ggml's dequantize_row_q5_1 computes them.
func decodeQ5_1(dst []float32, src []byte) []float32 {
	le := binary.LittleEndian
	for b := 0; b < len(src); b += BlockQ5_1Bytes {
		d := F16ToF32(le.Uint16(src[b:]))
		m := F16ToF32(le.Uint16(src[b+2:]))
		qh := le.Uint32(src[b+4:])
		qs := src[b+8 : b+BlockQ5_1Bytes]
		for j := range qs {
			dst = append(dst, float32(float32(qs[j]&0x0f|uint8(qh>>j&1)<<4)*d)+m)
		}
		for j := range qs {
			dst = append(dst, float32(float32(qs[j]>>4|uint8(qh>>(j+16)&1)<<4)*d)+m)
		}
	}
	return dst
}

// decodeQ5_K appends the values of the Q5_K blocks in src, whose length is
// a multiple of BlockQ5_KBytes, as ggml's dequantize_row_q5_K computes them.
func decodeQ5_K(dst []float32, src []byte) []float32 {
	le := binary.LittleEndian
	for b := 0; b < len(src); b += BlockQ5_KBytes {
		blk := src[b : b+BlockQ5_KBytes]
		d := F16ToF32(le.Uint16(blk))
		dmin := F16ToF32(le.Uint16(blk[2:]))
		sc := blk[4 : 4+kScaleSize]
		qh := blk[4+kScaleSize : 4+kScaleSize+QK_K/8]
		qs := blk[4+kScaleSize+QK_K/8:]
		for k := 0; k < QK_K/64; k++ {
			s1, m1 := scaleMinK4(2*k, sc)
			s2, m2 := scaleMinK4(2*k+1, sc)
			d1, o1 := d*float32(s1), dmin*float32(m1)
			d2, o2 := d*float32(s2), dmin*float32(m2)
			q := qs[32*k : 32*k+32]
			for l, v := range q {
				dst = append(dst, float32(d1*float32(v&0x0f|(qh[l]>>(2*k)&1)<<4))-o1)
			}
			for l, v := range q {
				dst = append(dst, float32(d2*float32(v>>4|(qh[l]>>(2*k+1)&1)<<4))-o2)
			}
		}
	}
	return dst
}
