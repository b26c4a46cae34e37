package routing

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
)

const (
	magic   = "SRTG"
	version = 1
	// chunkTarget is the payload a Writer gathers before it writes a
	// chunk: large enough that the count and CRC cost nothing, small
	// enough that a run killed mid-trace loses little.
	chunkTarget = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// encodeHeader returns the header bytes of h, CRC included.
func encodeHeader(h *Header) []byte {
	b := make([]byte, 12, 12+4+len(h.Arch)+len(h.Model)+16+12*len(h.Layers)+4)
	copy(b, magic)
	binary.LittleEndian.PutUint16(b[4:], version)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.Arch)))
	b = append(b, h.Arch...)
	b = binary.LittleEndian.AppendUint16(b, uint16(len(h.Model)))
	b = append(b, h.Model...)
	for _, v := range []int{h.Blocks, h.Experts, h.Used, len(h.Layers)} {
		b = binary.LittleEndian.AppendUint32(b, uint32(v))
	}
	for _, l := range h.Layers {
		b = binary.LittleEndian.AppendUint32(b, uint32(l.Index))
		b = binary.LittleEndian.AppendUint64(b, uint64(l.ExpertBytes))
	}
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)-12))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// Writer writes a trace token by token. Tokens are gathered into chunks
// of about 64 KiB, each written with its CRC when full, on Flush and on
// Close; Close writes the end record that marks the trace complete.
// After the first chunk Append allocates nothing. A Writer is used by one
// goroutine at a time.
type Writer struct {
	h      Header
	w      io.Writer
	file   *os.File // Create's file, closed by Close
	buf    []byte   // the chunk being gathered: u32 count, rows
	n      int      // tokens in buf
	tokens int64    // tokens appended
	rowLen int
	width  int
	err    error // sticky: the first write error, or ErrClosed
}

// NewWriter writes the header of a trace for h to w and returns a Writer
// for its tokens.
func NewWriter(w io.Writer, h Header) (*Writer, error) {
	if err := h.Validate(); err != nil {
		return nil, err
	}
	h.Layers = append([]Layer(nil), h.Layers...)
	if _, err := w.Write(encodeHeader(&h)); err != nil {
		return nil, fmt.Errorf("routing: write header: %w", err)
	}
	tw := &Writer{h: h, w: w, rowLen: h.RowLen(), width: h.width()}
	tw.buf = make([]byte, 4, 4+chunkTarget+h.RowLen()*h.width()+4)
	return tw, nil
}

// Create creates (or truncates) the file at path and writes a trace for
// h to it; Close closes the file.
func Create(path string, h Header) (*Writer, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	w, err := NewWriter(f, h)
	if err != nil {
		f.Close()
		os.Remove(path)
		return nil, err
	}
	w.file = f
	return w, nil
}

// Header returns the header the trace was written with.
func (w *Writer) Header() Header { return w.h }

// Tokens returns the number of tokens appended so far.
func (w *Writer) Tokens() int64 { return w.tokens }

// Append adds one token's routing: Header.RowLen expert ids, layer-major
// (the Used experts of Layers[0], then of Layers[1], ...). Ids out of
// range or a row of the wrong length are rejected and nothing is written.
func (w *Writer) Append(ids []int32) error {
	if w.err != nil {
		return w.err
	}
	if err := checkRow(&w.h, ids, int(w.tokens)); err != nil {
		return err
	}
	if len(w.buf)-4+w.rowLen*w.width > chunkTarget {
		if err := w.writeChunk(); err != nil {
			return err
		}
	}
	if w.width == 1 {
		for _, e := range ids {
			w.buf = append(w.buf, byte(e))
		}
	} else {
		for _, e := range ids {
			w.buf = binary.LittleEndian.AppendUint16(w.buf, uint16(e))
		}
	}
	w.n++
	w.tokens++
	return nil
}

// writeChunk writes the gathered tokens, if any, as one chunk.
func (w *Writer) writeChunk() error {
	if w.n == 0 {
		return nil
	}
	binary.LittleEndian.PutUint32(w.buf, uint32(w.n))
	w.buf = binary.LittleEndian.AppendUint32(w.buf, crc32.Checksum(w.buf, castagnoli))
	_, err := w.w.Write(w.buf)
	w.buf, w.n = w.buf[:4], 0
	if err != nil {
		w.err = fmt.Errorf("routing: write chunk: %w", err)
		return w.err
	}
	return nil
}

// Flush writes the tokens appended since the last chunk as a chunk of
// their own, so that a reader of the file sees them (as a truncated
// trace until Close). It flushes w's destination too when that is a
// *bufio.Writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if err := w.writeChunk(); err != nil {
		return err
	}
	if bw, ok := w.w.(*bufio.Writer); ok {
		if err := bw.Flush(); err != nil {
			w.err = fmt.Errorf("routing: flush: %w", err)
			return w.err
		}
	}
	return nil
}

// Close flushes the last chunk, writes the end record and, for a Writer
// from Create, syncs and closes the file. It is idempotent.
func (w *Writer) Close() error {
	if errors.Is(w.err, ErrClosed) {
		return nil
	}
	err := w.Flush()
	if err == nil {
		end := make([]byte, 12, 16)
		binary.LittleEndian.PutUint64(end[4:], uint64(w.tokens))
		end = binary.LittleEndian.AppendUint32(end, crc32.Checksum(end, castagnoli))
		if _, err = w.w.Write(end); err != nil {
			err = fmt.Errorf("routing: write end record: %w", err)
		} else if bw, ok := w.w.(*bufio.Writer); ok {
			err = bw.Flush()
		}
	}
	if w.file != nil {
		if err == nil {
			err = w.file.Sync()
		}
		err = errors.Join(err, w.file.Close())
	}
	w.err = ErrClosed
	return err
}

// WriteTo writes t as a trace file to w.
func (t *Trace) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	tw, err := NewWriter(cw, t.Header)
	if err != nil {
		return cw.n, err
	}
	row := make([]int32, t.RowLen())
	for tok := range t.Tokens() {
		for i, e := range t.ids[tok*len(row) : (tok+1)*len(row)] {
			row[i] = int32(e)
		}
		if err := tw.Append(row); err != nil {
			return cw.n, err
		}
	}
	err = tw.Close()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadFile reads the trace file at path (see Read).
func ReadFile(path string) (*Trace, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	defer f.Close()
	t, err := Read(bufio.NewReaderSize(f, 1<<16))
	if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return t, err
}

// Read reads a trace. Every error about the bytes is a *FormatError
// naming the field and its offset. A trace that ends without its end
// record (its Writer was never closed) is returned with the tokens of its
// complete chunks, together with an error wrapping ErrTruncated; on any
// other error the trace is nil.
func Read(r io.Reader) (*Trace, error) {
	d := &decoder{r: r}
	h, err := d.header()
	if err != nil {
		return nil, err
	}
	t := &Trace{Header: h}
	rowBytes := h.RowLen() * h.width()
	for chunk := 0; ; chunk++ {
		start := d.off
		field := fmt.Sprintf("chunk[%d].count", chunk)
		b, err := d.read(field, 4)
		if err != nil {
			if errors.Is(err, ErrTruncated) {
				if d.off == start { // at a chunk boundary: the end record is missing
					err = &FormatError{Field: field, Offset: start, Err: ErrTruncated, Detail: fmt.Sprintf("no end record after %d complete tokens (was the writer closed?)", t.Tokens())}
				}
				return t, err
			}
			return nil, err
		}
		n := binary.LittleEndian.Uint32(b)
		crc := crc32.Update(0, castagnoli, b)
		if n == 0 {
			return d.end(t, start, crc)
		}
		if uint64(n)*uint64(rowBytes) > maxChunkBytes {
			return nil, &FormatError{Field: field, Offset: start, Err: ErrLimit, Detail: fmt.Sprintf("%d tokens of %d bytes (a chunk holds at most %d bytes)", n, rowBytes, maxChunkBytes)}
		}
		rows, err := d.read(fmt.Sprintf("chunk[%d].rows", chunk), int(n)*rowBytes)
		if err != nil {
			return t, err
		}
		crc = crc32.Update(crc, castagnoli, rows)
		base := t.Tokens()
		at := len(t.ids)
		t.ids = slices.Grow(t.ids, int(n)*h.RowLen())
		if h.width() == 1 {
			for _, e := range rows {
				t.ids = append(t.ids, uint16(e))
			}
		} else {
			for i := 0; i < len(rows); i += 2 {
				t.ids = append(t.ids, binary.LittleEndian.Uint16(rows[i:]))
			}
		}
		sumOff := d.off
		sum, err := d.read(fmt.Sprintf("chunk[%d].crc", chunk), 4)
		if err != nil {
			t.ids = t.ids[:at]
			return t, err
		}
		if got := binary.LittleEndian.Uint32(sum); got != crc {
			return nil, &FormatError{Field: fmt.Sprintf("chunk[%d].crc", chunk), Offset: sumOff, Err: ErrChecksum, Detail: fmt.Sprintf("stored %#08x, computed %#08x over %d tokens from offset %d", got, crc, n, start)}
		}
		// Checked after the CRC, so that an id out of range is a writer's
		// bug (or a crafted file), not a flipped bit.
		for i, e := range t.ids[at:] {
			if int(e) >= h.Experts {
				tok, k := i/h.RowLen(), i%h.RowLen()
				return nil, &FormatError{
					Field:  fmt.Sprintf("chunk[%d].token[%d].layer[%d]", chunk, base+tok, h.Layers[k/h.Used].Index),
					Offset: start + 4 + int64(i*h.width()),
					Err:    ErrExpert,
					Detail: fmt.Sprintf("expert %d of %d", e, h.Experts),
				}
			}
		}
	}
}

// decoder reads fields and keeps the offset for errors.
type decoder struct {
	r   io.Reader
	off int64
	buf []byte
}

// read returns the next n bytes, valid until the next read.
func (d *decoder) read(field string, n int) ([]byte, error) {
	if cap(d.buf) < n {
		d.buf = make([]byte, n)
	}
	b := d.buf[:n]
	k, err := io.ReadFull(d.r, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return nil, &FormatError{Field: field, Offset: d.off, Err: ErrTruncated, Detail: fmt.Sprintf("%d of %d bytes present", k, n)}
	}
	if err != nil {
		return nil, fmt.Errorf("routing: read %s at offset %d: %w", field, d.off, err)
	}
	d.off += int64(n)
	return b, nil
}

// header reads and checks the header.
func (d *decoder) header() (Header, error) {
	var h Header
	fixed, err := d.read("magic", 12)
	if err != nil {
		return h, err
	}
	fixed = append([]byte(nil), fixed...)
	if string(fixed[:4]) != magic {
		return h, &FormatError{Field: "magic", Offset: 0, Err: ErrBadMagic, Detail: fmt.Sprintf("got %q", fixed[:4])}
	}
	if v := binary.LittleEndian.Uint16(fixed[4:]); v != version {
		return h, &FormatError{Field: "version", Offset: 4, Err: ErrVersion, Detail: fmt.Sprintf("version %d, this reader knows %d", v, version)}
	}
	if f := binary.LittleEndian.Uint16(fixed[6:]); f != 0 {
		return h, &FormatError{Field: "flags", Offset: 6, Err: ErrVersion, Detail: fmt.Sprintf("flags %#04x set", f)}
	}
	size := binary.LittleEndian.Uint32(fixed[8:])
	if max := uint32(4 + 2*maxString + 16 + 12*maxBlocks); size > max {
		return h, &FormatError{Field: "header.length", Offset: 8, Err: ErrLimit, Detail: fmt.Sprintf("%d bytes (at most %d)", size, max)}
	}
	body, err := d.read("header", int(size))
	if err != nil {
		return h, err
	}
	body = append([]byte(nil), body...)
	crc := crc32.Update(crc32.Checksum(fixed, castagnoli), castagnoli, body)
	sum, err := d.read("header.crc", 4)
	if err != nil {
		return h, err
	}
	if got := binary.LittleEndian.Uint32(sum); got != crc {
		return h, &FormatError{Field: "header.crc", Offset: d.off - 4, Err: ErrChecksum, Detail: fmt.Sprintf("stored %#08x, computed %#08x", got, crc)}
	}
	p := parser{b: body, off: 12}
	h.Arch = p.str("header.arch")
	h.Model = p.str("header.model")
	h.Blocks = int(p.u32("header.blocks"))
	h.Experts = int(p.u32("header.experts"))
	h.Used = int(p.u32("header.used"))
	n := p.u32("header.layers")
	if p.err == nil && uint64(n)*12 > uint64(len(p.b)) {
		p.fail("header.layers", ErrTrailing, fmt.Sprintf("%d layers need %d bytes, %d left in the header", n, uint64(n)*12, len(p.b)))
	}
	for i := 0; p.err == nil && i < int(n); i++ {
		l := Layer{Index: int(p.u32(fmt.Sprintf("header.layer[%d].index", i)))}
		field, off := fmt.Sprintf("header.layer[%d].expert_bytes", i), p.off
		if l.ExpertBytes = int64(p.u64(field)); l.ExpertBytes < 0 && p.err == nil {
			p.err = &FormatError{Field: field, Offset: off, Err: ErrHeader, Detail: fmt.Sprintf("%d bytes", uint64(l.ExpertBytes))}
		}
		h.Layers = append(h.Layers, l)
	}
	if p.err == nil && len(p.b) != 0 {
		p.fail("header", ErrTrailing, fmt.Sprintf("%d bytes after the last layer", len(p.b)))
	}
	if p.err != nil {
		return Header{}, p.err
	}
	if detail, sentinel := h.check(); sentinel != nil {
		return Header{}, &FormatError{Field: "header", Offset: 12, Err: sentinel, Detail: detail}
	}
	return h, nil
}

// end reads the end record's total and CRC and checks that nothing follows.
func (d *decoder) end(t *Trace, start int64, crc uint32) (*Trace, error) {
	b, err := d.read("end.tokens", 8)
	if err != nil {
		return t, err
	}
	total := binary.LittleEndian.Uint64(b)
	crc = crc32.Update(crc, castagnoli, b)
	if b, err = d.read("end.crc", 4); err != nil {
		return t, err
	}
	if got := binary.LittleEndian.Uint32(b); got != crc {
		return nil, &FormatError{Field: "end.crc", Offset: d.off - 4, Err: ErrChecksum, Detail: fmt.Sprintf("stored %#08x, computed %#08x", got, crc)}
	}
	if total != uint64(t.Tokens()) {
		return nil, &FormatError{Field: "end.tokens", Offset: start + 4, Err: ErrTruncated, Detail: fmt.Sprintf("the end record counts %d tokens, the chunks hold %d (a chunk is missing)", total, t.Tokens())}
	}
	var one [1]byte
	if k, _ := io.ReadFull(d.r, one[:]); k != 0 {
		return nil, &FormatError{Field: "end", Offset: d.off, Err: ErrTrailing, Detail: "data after the end record"}
	}
	return t, nil
}

// parser reads the header body; the first error sticks.
type parser struct {
	b   []byte
	off int64
	err error
}

func (p *parser) fail(field string, err error, detail string) {
	if p.err == nil {
		p.err = &FormatError{Field: field, Offset: p.off, Err: err, Detail: detail}
	}
}

func (p *parser) take(field string, n int) []byte {
	if p.err != nil {
		return nil
	}
	if len(p.b) < n {
		p.fail(field, ErrTrailing, fmt.Sprintf("header ends %d bytes short of it", n-len(p.b)))
		return nil
	}
	b := p.b[:n]
	p.b, p.off = p.b[n:], p.off+int64(n)
	return b
}

func (p *parser) u32(field string) uint32 {
	if b := p.take(field, 4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (p *parser) u64(field string) uint64 {
	if b := p.take(field, 8); b != nil {
		return binary.LittleEndian.Uint64(b)
	}
	return 0
}

func (p *parser) str(field string) string {
	b := p.take(field+".len", 2)
	if b == nil {
		return ""
	}
	n := int(binary.LittleEndian.Uint16(b))
	if n > maxString {
		p.off -= 2
		p.fail(field+".len", ErrLimit, fmt.Sprintf("%d bytes (at most %d)", n, maxString))
		return ""
	}
	return string(p.take(field, n))
}
