package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/strata-llm/strata/llama"
)

// The OpenAI wire types Strata reads and writes: the subset of the
// chat-completions and completions APIs a local engine can honour.
// Unknown fields are ignored, as OpenAI's own server does.

// chatRequest is POST /v1/chat/completions.
type chatRequest struct {
	Model    string        `json:"model"`
	Messages []chatMessage `json:"messages"`
	// Tools and ResponseFormat are read only to refuse what Strata does
	// not do (function calling, constrained JSON), rather than answer
	// with plain text a client did not ask for.
	Tools          json.RawMessage `json:"tools"`
	ResponseFormat *struct {
		Type string `json:"type"`
	} `json:"response_format"`
	common
}

// unsupported returns the parameter and message for the first feature of
// r that Strata does not implement, or "".
func (r *chatRequest) unsupported() (param, msg string) {
	if t := strings.TrimSpace(string(r.Tools)); t != "" && t != "null" && t != "[]" {
		return "tools", "tools (function calling) are not supported by this server"
	}
	if f := r.ResponseFormat; f != nil && f.Type != "" && f.Type != "text" {
		return "response_format", fmt.Sprintf("response_format %q is not supported by this server (only text)", f.Type)
	}
	return "", ""
}

// completionRequest is POST /v1/completions.
type completionRequest struct {
	Model  string          `json:"model"`
	Prompt json.RawMessage `json:"prompt"` // a string or an array of one string
	Echo   bool            `json:"echo"`
	common
}

// common holds the fields both endpoints take.
type common struct {
	MaxTokens           *int            `json:"max_tokens"`
	MaxCompletionTokens *int            `json:"max_completion_tokens"`
	Temperature         *float32        `json:"temperature"`
	TopP                *float32        `json:"top_p"`
	TopK                *int            `json:"top_k"` // llama-server's extension
	MinP                *float32        `json:"min_p"` // llama-server's extension
	Seed                *int64          `json:"seed"`
	Stop                stopList        `json:"stop"`
	Stream              bool            `json:"stream"`
	StreamOptions       *streamOptions  `json:"stream_options"`
	N                   *int            `json:"n"`
	Logprobs            json.RawMessage `json:"logprobs"` // chat: a bool; completions: a count
	TopLogprobs         *int            `json:"top_logprobs"`
	FrequencyPenalty    *float32        `json:"frequency_penalty"`
	PresencePenalty     *float32        `json:"presence_penalty"`
	User                string          `json:"user"`
	// Strata's extensions: generating past end-of-generation tokens (as
	// llama-server's ignore_eos), reusing the KV of a prompt's prefix
	// that a free sequence holds (llama-server's cache_prompt, default
	// true), the LoRA adapter to apply (its persona must own it) and the
	// persona, which may also come as the X-Strata-Persona header.
	IgnoreEOS   bool   `json:"ignore_eos"`
	CachePrompt *bool  `json:"cache_prompt"`
	Adapter     string `json:"adapter"`
	Persona     string `json:"persona"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// chatMessage is one message; content is a string or an array of parts,
// of which the text parts are joined.
type chatMessage struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

func (m chatMessage) text() (string, error) {
	if len(m.Content) == 0 || string(m.Content) == "null" {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		return s, nil
	}
	var parts []struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	if err := json.Unmarshal(m.Content, &parts); err != nil {
		return "", fmt.Errorf("content must be a string or an array of parts")
	}
	var b strings.Builder
	for _, p := range parts {
		if p.Type != "text" {
			return "", fmt.Errorf("content part of type %q: only text is supported", p.Type)
		}
		b.WriteString(p.Text)
	}
	return b.String(), nil
}

// stopList is "stop": a string or an array of strings.
type stopList []string

func (s *stopList) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil
	}
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stopList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("stop must be a string or an array of strings")
	}
	*s = many
	return nil
}

// promptText reads a completions prompt: a string, or an array of exactly
// one string.
func promptText(raw json.RawMessage) (string, error) {
	if len(raw) == 0 {
		return "", errors.New("prompt is required")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err == nil {
		if len(many) != 1 {
			return "", fmt.Errorf("prompt holds %d strings; this server takes one per request", len(many))
		}
		return many[0], nil
	}
	return "", errors.New("prompt must be a string (token arrays are not supported)")
}

func toMessages(in []chatMessage) ([]llama.ChatMessage, error) {
	if len(in) == 0 {
		return nil, errors.New("messages must not be empty")
	}
	out := make([]llama.ChatMessage, len(in))
	for i, m := range in {
		if m.Role == "" {
			return nil, fmt.Errorf("messages[%d].role is empty", i)
		}
		text, err := m.text()
		if err != nil {
			return nil, fmt.Errorf("messages[%d]: %w", i, err)
		}
		role := m.Role
		switch role {
		case "developer": // OpenAI's newer name for system
			role = "system"
		case "system", "user", "assistant", "tool":
		default:
			return nil, fmt.Errorf("messages[%d].role %q: want system, developer, user, assistant or tool", i, m.Role)
		}
		out[i] = llama.ChatMessage{Role: role, Content: text}
	}
	return out, nil
}

type usage struct {
	PromptTokens        int           `json:"prompt_tokens"`
	CompletionTokens    int           `json:"completion_tokens"`
	TotalTokens         int           `json:"total_tokens"`
	PromptTokensDetails promptDetails `json:"prompt_tokens_details"`
}

// promptDetails says how many prompt tokens came from the cache, as
// OpenAI's API does.
type promptDetails struct {
	CachedTokens int `json:"cached_tokens"`
}

// timings are llama-server's per-request timings, sent beside usage.
type timings struct {
	CacheN             int     `json:"cache_n"`  // prompt tokens not decoded again
	PromptN            int     `json:"prompt_n"` // prompt tokens decoded
	PromptMs           float64 `json:"prompt_ms"`
	PredictedN         int     `json:"predicted_n"`
	PredictedMs        float64 `json:"predicted_ms"`
	PredictedPerSecond float64 `json:"predicted_per_second"`
	TimeToFirstTokenMs float64 `json:"ttft_ms"`
	QueueMs            float64 `json:"queue_ms"`
}

type chatChoice struct {
	Index        int       `json:"index"`
	Message      *chatOut  `json:"message,omitempty"`
	Delta        *chatOut  `json:"delta,omitempty"`
	FinishReason *string   `json:"finish_reason"`
	Logprobs     *struct{} `json:"logprobs"`
}

type chatOut struct {
	Role    string  `json:"role,omitempty"`
	Content *string `json:"content,omitempty"`
}

type chatResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []chatChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
	Timings *timings     `json:"timings,omitempty"`
}

type textChoice struct {
	Index        int       `json:"index"`
	Text         string    `json:"text"`
	FinishReason *string   `json:"finish_reason"`
	Logprobs     *struct{} `json:"logprobs"`
}

type completionResponse struct {
	ID      string       `json:"id"`
	Object  string       `json:"object"`
	Created int64        `json:"created"`
	Model   string       `json:"model"`
	Choices []textChoice `json:"choices"`
	Usage   *usage       `json:"usage,omitempty"`
	Timings *timings     `json:"timings,omitempty"`
}

type modelList struct {
	Object string      `json:"object"`
	Data   []modelInfo `json:"data"`
}

type modelInfo struct {
	ID      string         `json:"id"`
	Object  string         `json:"object"`
	Created int64          `json:"created"`
	OwnedBy string         `json:"owned_by"`
	Meta    map[string]any `json:"meta,omitempty"`
}

// apiError is OpenAI's error body.
type apiError struct {
	Error apiErrorBody `json:"error"`
}

type apiErrorBody struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}
