package engine

import (
	"context"
	"fmt"

	"github.com/google/uuid"

	"github.com/strata-llm/strata/bus"
)

// ModuleName is the name of the Engine's module in its bus.Runtime.
const ModuleName = "inference"

// Response answers a bus.KeyLLMRequest command: the generated text and how
// the request ended.
type Response struct {
	ID               uuid.UUID  `json:"id"`
	Text             string     `json:"text"`
	StopReason       StopReason `json:"stop_reason"`
	PromptTokens     int        `json:"prompt_tokens"`
	CompletionTokens int        `json:"completion_tokens"`
	Total            Millis     `json:"total_ms"`
}

// module lets other modules ask for inference without importing engine:
//
//	res, err := rt.Send(ctx, engine.ModuleName, bus.Command{
//		Name: bus.KeyLLMRequest, Payload: json.RawMessage(`{"prompt":"Hello","max_tokens":16}`)})
//
// The payload is a Request, a *Request or its JSON; the answer is a
// Response. The command runs to completion (or until ctx ends).
func (e *Engine) module() bus.Module {
	return bus.ModuleFuncs{ModuleName: ModuleName, Command: e.handleCommand}
}

func (e *Engine) handleCommand(ctx context.Context, cmd bus.Command) (any, error) {
	if cmd.Name != bus.KeyLLMRequest {
		return nil, fmt.Errorf("engine: command %q: %w (want %s)", cmd.Name, bus.ErrNoHandler, bus.KeyLLMRequest)
	}
	req, err := bus.Decode[Request](cmd.Payload)
	if err != nil {
		return nil, fmt.Errorf("engine: command %s: %w", cmd.Name, err)
	}
	st, err := e.Generate(ctx, req)
	if err != nil {
		return nil, err
	}
	text, res := st.Text()
	if res.Err != nil {
		return nil, res.Err
	}
	return Response{ID: res.ID, Text: text, StopReason: res.StopReason, PromptTokens: res.PromptTokens,
		CompletionTokens: res.CompletionTokens, Total: Millis(res.Total)}, nil
}
