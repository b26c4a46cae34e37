package audit

import (
	"bytes"
	"testing"
)

// Property: changing, deleting or inserting any single byte anywhere in a
// log is detected by Verify. Canonical parsing turns every change into
// either a malformed line or a change of a hashed field, and the chain
// catches the latter.
func TestTamperAnyByteIsDetected(t *testing.T) {
	es := chain(6, steady)
	es[3].Payload = []byte(`{"s":"a \"quoted\" \\ string","n":-1.5e3,"t":true,"z":null,"u":"\u00e9"}`)
	rehash(es)
	data := encode(es)
	if _, err := VerifyReader(bytes.NewReader(data), VerifyOptions{}); err != nil {
		t.Fatalf("untouched log: %v", err)
	}
	verify := func(b []byte) error {
		_, err := VerifyReader(bytes.NewReader(b), VerifyOptions{})
		return err
	}
	mut := make([]byte, len(data)+1)
	checked := 0
	for i := range data {
		for _, v := range []byte{data[i] ^ 0x01, data[i] ^ 0x20, data[i] ^ 0x80, '\n', ' ', '0', '"', 'a', 'A', '{', '}'} {
			if v == data[i] {
				continue
			}
			copy(mut, data)
			mut[i] = v
			if verify(mut[:len(data)]) == nil {
				t.Fatalf("byte %d changed from %q to %q: not detected", i, data[i], v)
			}
			checked++
		}
		// Delete byte i.
		copy(mut, data[:i])
		copy(mut[i:], data[i+1:])
		if verify(mut[:len(data)-1]) == nil {
			t.Fatalf("byte %d (%q) deleted: not detected", i, data[i])
		}
		// Insert a space before byte i.
		copy(mut, data[:i])
		mut[i] = ' '
		copy(mut[i+1:], data[i:])
		if verify(mut) == nil {
			t.Fatalf("space inserted at byte %d: not detected", i)
		}
		checked += 2
	}
	if checked < 10*len(data) {
		t.Errorf("checked only %d mutations of %d bytes", checked, len(data))
	}
}
