package bus

import (
	"encoding/json"
	"errors"
	"testing"
)

type pageFault struct {
	Page  int    `json:"page"`
	Layer string `json:"layer"`
}

func TestDecode(t *testing.T) {
	want := pageFault{Page: 7, Layer: "blk.3"}
	raw, _ := json.Marshal(want)
	tests := []struct {
		name    string
		payload any
		wantErr bool
	}{
		{"value", want, false},
		{"pointer", &want, false},
		{"raw message", json.RawMessage(raw), false},
		{"bytes", raw, false},
		{"string", string(raw), false},
		{"nil pointer", (*pageFault)(nil), true},
		{"nil", nil, true},
		{"wrong type", 42, true},
		{"bad json", json.RawMessage(`{"page":"x"}`), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode[pageFault](tt.payload)
			if tt.wantErr {
				var pe *PayloadError
				if !errors.As(err, &pe) || !errors.Is(err, ErrPayloadType) {
					t.Fatalf("got %v, want a *PayloadError wrapping ErrPayloadType", err)
				}
				return
			}
			if err != nil || got != want {
				t.Errorf("got %+v, %v, want %+v, nil", got, err, want)
			}
		})
	}
}

func TestTopicRoundTrip(t *testing.T) {
	b := New()
	topic := Topic[pageFault]{Key: KeyPageFault}
	var got []pageFault
	var errs []error
	mustSubscribeArtifact(t, b, Exact(KeyPageFault), ModuleFuncs{ModuleName: "t", Artifact: func(a Artifact) {
		v, err := topic.Decode(a.Payload)
		got = append(got, v)
		errs = append(errs, err)
	}})
	in := pageFault{Page: 1, Layer: "output"}
	if err := topic.Publish(b, in); err != nil {
		t.Fatal(err)
	}
	if err := topic.PublishJSON(b, in); err != nil {
		t.Fatal(err)
	}
	if err := PublishJSON(b, KeyPageFault, func() {}); !errors.Is(err, ErrPayloadType) {
		t.Errorf("PublishJSON(func): got %v, want ErrPayloadType", err)
	}
	if len(got) != 2 || got[0] != in || got[1] != in || errors.Join(errs...) != nil {
		t.Errorf("got %+v (errors %v), want two copies of %+v", got, errs, in)
	}
}
