package llama

// #include "shim.h"
import "C"

import (
	"fmt"
	"unsafe"
)

// ChatMessage is one turn of a conversation.
type ChatMessage struct {
	Role    string // "system", "user", "assistant", …
	Content string
}

// DefaultChatTemplate is the template used for models whose GGUF carries
// none, as llama-server does.
const DefaultChatTemplate = "chatml"

// ChatTemplate returns the model's chat template (tokenizer.chat_template,
// or the named variant tokenizer.chat_template.<name> when name is not
// empty); ok is false when the file has none.
func (m *Model) ChatTemplate(name string) (tmpl string, ok bool) {
	var cname *C.char
	if name != "" {
		cname = C.CString(name)
		defer C.free(unsafe.Pointer(cname))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.c == nil {
		return "", false
	}
	p := C.llama_model_chat_template(m.c, cname)
	if p == nil {
		return "", false
	}
	return C.GoString(p), true
}

// ApplyChatTemplate formats msgs into a prompt with template tmpl: a
// template's Jinja source as found in GGUF files, or one of llama.cpp's
// built-in names ("chatml", "llama3", …). llama.cpp recognises templates
// from a fixed list rather than running Jinja; an unknown one is an error
// naming it. addAssistant ends the prompt with the start of an assistant
// turn, which is what generation wants.
func ApplyChatTemplate(tmpl string, msgs []ChatMessage, addAssistant bool) (string, error) {
	Init()
	if len(msgs) == 0 {
		return "", fmt.Errorf("llama: chat template: no messages")
	}
	// One C allocation holds the message array; the strings are separate.
	cmsgs := (*[1 << 20]C.struct_llama_chat_message)(C.calloc(C.size_t(len(msgs)), C.size_t(unsafe.Sizeof(C.struct_llama_chat_message{}))))[:len(msgs):len(msgs)]
	defer C.free(unsafe.Pointer(&cmsgs[0]))
	total := 0
	for i, m := range msgs {
		cmsgs[i].role = C.CString(m.Role)
		cmsgs[i].content = C.CString(m.Content)
		total += len(m.Role) + len(m.Content)
	}
	defer func() {
		for i := range cmsgs {
			C.free(unsafe.Pointer(cmsgs[i].role))
			C.free(unsafe.Pointer(cmsgs[i].content))
		}
	}()
	ctmpl := C.CString(tmpl)
	defer C.free(unsafe.Pointer(ctmpl))
	size := 2*total + 256
	for range 2 {
		buf := (*C.char)(C.malloc(C.size_t(size)))
		n := int(C.llama_chat_apply_template(ctmpl, &cmsgs[0], C.size_t(len(msgs)), C.bool(addAssistant), buf, C.int32_t(size)))
		if n < 0 {
			C.free(unsafe.Pointer(buf))
			return "", fmt.Errorf("llama: chat template %s is not one llama.cpp supports: %w", describeTemplate(tmpl), ErrUnsupportedTemplate)
		}
		if n <= size {
			s := C.GoStringN(buf, C.int(n))
			C.free(unsafe.Pointer(buf))
			return s, nil
		}
		C.free(unsafe.Pointer(buf))
		size = n
	}
	return "", &Error{Op: "ApplyChatTemplate", Detail: "formatted prompt changed size between calls"}
}

// describeTemplate names a template in an error without printing pages of
// Jinja.
func describeTemplate(tmpl string) string {
	if len(tmpl) <= 40 {
		return fmt.Sprintf("%q", tmpl)
	}
	return fmt.Sprintf("%q… (%d bytes)", tmpl[:40], len(tmpl))
}
