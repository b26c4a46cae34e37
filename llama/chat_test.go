package llama

import (
	"errors"
	"strings"
	"testing"
)

func TestApplyChatTemplate(t *testing.T) {
	msgs := []ChatMessage{{Role: "system", Content: "Be brief."}, {Role: "user", Content: "Hi"}}
	for _, tc := range []struct {
		tmpl string
		want []string
	}{
		{"chatml", []string{"<|im_start|>system\nBe brief.<|im_end|>", "<|im_start|>user\nHi<|im_end|>", "<|im_start|>assistant\n"}},
		{"llama3", []string{"<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>", "<|start_header_id|>assistant<|end_header_id|>"}},
	} {
		t.Run(tc.tmpl, func(t *testing.T) {
			got, err := ApplyChatTemplate(tc.tmpl, msgs, true)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("got %q, want it to contain %q", got, w)
				}
			}
			if !strings.HasSuffix(got, "\n") {
				t.Errorf("got %q: no open assistant turn at the end", got)
			}
		})
	}
	long := strings.Repeat("x", 5000)
	got, err := ApplyChatTemplate("chatml", []ChatMessage{{Role: "user", Content: long}}, false)
	if err != nil || !strings.Contains(got, long) {
		t.Errorf("a message longer than the first buffer: %v", err)
	}
	if _, err := ApplyChatTemplate("{% not a template we know %}", msgs, true); !errors.Is(err, ErrUnsupportedTemplate) {
		t.Errorf("unknown template: got %v, want ErrUnsupportedTemplate", err)
	}
	if _, err := ApplyChatTemplate("chatml", nil, true); err == nil {
		t.Error("no messages: no error")
	}
}
