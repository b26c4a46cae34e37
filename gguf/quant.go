package gguf

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Block layouts of the encoders, as in ggml-common.h.
const (
	// QK8_0 is the number of values in a Q8_0 block.
	QK8_0 = 32
	// QK4_0 is the number of values in a Q4_0 block.
	QK4_0 = 32
	// BlockQ8_0Bytes is sizeof(block_q8_0): an f16 scale and 32 int8.
	BlockQ8_0Bytes = 2 + QK8_0
	// BlockQ4_0Bytes is sizeof(block_q4_0): an f16 scale and 16 bytes of
	// nibbles.
	BlockQ4_0Bytes = 2 + QK4_0/2
)

// Encode appends the encoding of src as type t to dst and returns the
// extended slice. F32, F16, Q8_0, Q4_0, Q5_0, Q5_1, Q4_K, Q5_K and Q6_K are
// supported: every type llama-quantize's Q4_K_M mix writes, with its
// fallbacks. For the block types len(src) must be a multiple of the block
// size (32, or QK_K = 256 for the K-quants). Q8_0, Q4_0, Q5_0 and Q5_1 are
// byte-identical to ggml's reference quantizers (quantize_row_q8_0_ref and
// the others); the K-quants follow quantize_row_q4_K_ref, q5_K_ref and
// q6_K_ref (see EncodeQ4_K, EncodeQ5_K and EncodeQ6_K).
func Encode(dst []byte, t Type, src []float32) ([]byte, error) {
	switch t {
	case TypeF32:
		return EncodeF32(dst, src), nil
	case TypeF16:
		return EncodeF16(dst, src), nil
	case TypeQ8_0:
		if len(src)%QK8_0 != 0 {
			return dst, fmt.Errorf("gguf: q8_0: %d values is not a multiple of %d", len(src), QK8_0)
		}
		return EncodeQ8_0(dst, src), nil
	case TypeQ4_0:
		if len(src)%QK4_0 != 0 {
			return dst, fmt.Errorf("gguf: q4_0: %d values is not a multiple of %d", len(src), QK4_0)
		}
		return EncodeQ4_0(dst, src), nil
	case TypeQ5_0:
		if len(src)%QK5_0 != 0 {
			return dst, fmt.Errorf("gguf: q5_0: %d values is not a multiple of %d", len(src), QK5_0)
		}
		return EncodeQ5_0(dst, src), nil
	case TypeQ5_1:
		if len(src)%QK5_1 != 0 {
			return dst, fmt.Errorf("gguf: q5_1: %d values is not a multiple of %d", len(src), QK5_1)
		}
		return EncodeQ5_1(dst, src), nil
	case TypeQ4_K:
		if len(src)%QK_K != 0 {
			return dst, fmt.Errorf("gguf: q4_K: %d values is not a multiple of %d", len(src), QK_K)
		}
		return EncodeQ4_K(dst, src), nil
	case TypeQ5_K:
		if len(src)%QK_K != 0 {
			return dst, fmt.Errorf("gguf: q5_K: %d values is not a multiple of %d", len(src), QK_K)
		}
		return EncodeQ5_K(dst, src), nil
	case TypeQ6_K:
		if len(src)%QK_K != 0 {
			return dst, fmt.Errorf("gguf: q6_K: %d values is not a multiple of %d", len(src), QK_K)
		}
		return EncodeQ6_K(dst, src), nil
	}
	return dst, fmt.Errorf("gguf: no encoder for type %v", t)
}

// Decode appends the float32 values encoded in src as type t to dst. It
// supports the types Encode supports and exists for tests and inspection.
func Decode(dst []float32, t Type, src []byte) ([]float32, error) {
	le := binary.LittleEndian
	switch t {
	case TypeF32:
		if len(src)%4 != 0 {
			break
		}
		for i := 0; i < len(src); i += 4 {
			dst = append(dst, math.Float32frombits(le.Uint32(src[i:])))
		}
		return dst, nil
	case TypeF16:
		if len(src)%2 != 0 {
			break
		}
		for i := 0; i < len(src); i += 2 {
			dst = append(dst, F16ToF32(le.Uint16(src[i:])))
		}
		return dst, nil
	case TypeQ8_0:
		if len(src)%BlockQ8_0Bytes != 0 {
			break
		}
		for b := 0; b < len(src); b += BlockQ8_0Bytes {
			d := F16ToF32(le.Uint16(src[b:]))
			for j := 0; j < QK8_0; j++ {
				dst = append(dst, float32(int8(src[b+2+j]))*d)
			}
		}
		return dst, nil
	case TypeQ4_0:
		if len(src)%BlockQ4_0Bytes != 0 {
			break
		}
		for b := 0; b < len(src); b += BlockQ4_0Bytes {
			d := F16ToF32(le.Uint16(src[b:]))
			qs := src[b+2 : b+BlockQ4_0Bytes]
			for j := 0; j < QK4_0/2; j++ {
				dst = append(dst, float32(int(qs[j]&0x0f)-8)*d)
			}
			for j := 0; j < QK4_0/2; j++ {
				dst = append(dst, float32(int(qs[j]>>4)-8)*d)
			}
		}
		return dst, nil
	case TypeQ5_0:
		if len(src)%BlockQ5_0Bytes != 0 {
			break
		}
		return decodeQ5_0(dst, src), nil
	case TypeQ5_1:
		if len(src)%BlockQ5_1Bytes != 0 {
			break
		}
		return decodeQ5_1(dst, src), nil
	case TypeQ4_K:
		if len(src)%BlockQ4_KBytes != 0 {
			break
		}
		return decodeQ4_K(dst, src), nil
	case TypeQ5_K:
		if len(src)%BlockQ5_KBytes != 0 {
			break
		}
		return decodeQ5_K(dst, src), nil
	case TypeQ6_K:
		if len(src)%BlockQ6_KBytes != 0 {
			break
		}
		return decodeQ6_K(dst, src), nil
	default:
		return dst, fmt.Errorf("gguf: no decoder for type %v", t)
	}
	return dst, fmt.Errorf("gguf: %v: %d bytes is not a whole number of blocks", t, len(src))
}

// EncodeF32 appends src as little-endian float32.
func EncodeF32(dst []byte, src []float32) []byte {
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint32(dst, math.Float32bits(v))
	}
	return dst
}

// EncodeF16 appends src as IEEE half precision, rounded to nearest even.
func EncodeF16(dst []byte, src []float32) []byte {
	for _, v := range src {
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(v))
	}
	return dst
}

// EncodeQ8_0 appends src as Q8_0 blocks: per 32 values, d = amax/127 as f16,
// then q[j] = round(x[j]/d) as int8. len(src) must be a multiple of 32.
func EncodeQ8_0(dst []byte, src []float32) []byte {
	for b := 0; b+QK8_0 <= len(src); b += QK8_0 {
		x := src[b : b+QK8_0]
		var amax float32
		for _, v := range x {
			amax = max(amax, abs32(v))
		}
		d := amax / 127
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
		for _, v := range x {
			// The explicit conversion stops the compiler fusing operations,
			// so the product rounds as it does in C.
			q := float32(v * id)
			dst = append(dst, byte(int8(math.Round(float64(q)))))
		}
	}
	return dst
}

// EncodeQ4_0 appends src as Q4_0 blocks: per 32 values, d = max/-8 where max
// is the value of largest magnitude, stored as f16; q = min(15,
// trunc(x/d+8.5)); byte j holds element j in its low nibble and element j+16
// in its high nibble, and value = (q-8)*d. len(src) must be a multiple of 32.
func EncodeQ4_0(dst []byte, src []float32) []byte {
	for b := 0; b+QK4_0 <= len(src); b += QK4_0 {
		x := src[b : b+QK4_0]
		d := signedMax(x) / -8
		var id float32
		if d != 0 {
			id = 1 / d
		}
		dst = binary.LittleEndian.AppendUint16(dst, F32ToF16(d))
		for j := 0; j < QK4_0/2; j++ {
			x0 := float32(x[j]*id) + 8.5
			x1 := float32(x[j+QK4_0/2]*id) + 8.5
			dst = append(dst, min(15, uint8(int8(x0)))|min(15, uint8(int8(x1)))<<4)
		}
	}
	return dst
}

func abs32(v float32) float32 { return math.Float32frombits(math.Float32bits(v) &^ (1 << 31)) }

// F32ToF16 converts to IEEE 754 half precision with round-to-nearest-even,
// as ggml's GGML_FP32_TO_FP16 does (overflow gives infinity, NaN stays NaN).
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	switch {
	case exp == 0xff:
		if man != 0 {
			return sign | 0x7e00
		}
		return sign | 0x7c00
	case exp-127+15 >= 0x1f:
		return sign | 0x7c00
	case exp-127+15 <= 0:
		// Subnormal half or zero.
		e := exp - 127 + 15
		if e < -10 {
			return sign
		}
		man |= 0x800000
		shift := uint32(14 - e)
		h := man >> shift
		rem := man & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || (rem == half && h&1 == 1) {
			h++
		}
		return sign | uint16(h)
	}
	h := uint32(exp-127+15)<<10 | man>>13
	rem := man & 0x1fff
	if rem > 0x1000 || (rem == 0x1000 && h&1 == 1) {
		h++ // may carry into the exponent, which is correct (up to infinity)
	}
	return sign | uint16(h)
}

// F16ToF32 converts an IEEE 754 half to float32 exactly.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	man := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = man * 2^-24.
		v := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			v = -v
		}
		return v
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// signedMax returns the value of largest magnitude in x, with its sign (the
// first one on a tie), as ggml's Q4_0/Q5_0 reference quantizers pick it:
// the block's scale is derived from it so that it maps to the lowest level.
func signedMax(x []float32) float32 {
	var amax, mx float32
	for _, v := range x {
		if a := abs32(v); amax < a {
			amax, mx = a, v
		}
	}
	return mx
}
