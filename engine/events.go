package engine

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/strata-llm/strata/bus"
)

// Inference events, published on the Engine's bus under the canonical keys
// (DESIGN.md "Bus"). Payloads are the value types below; their JSON forms
// carry IDs as UUID strings, tiers by name and durations in milliseconds,
// which is what /v1/events streams.
var (
	RequestTopic        = bus.Topic[RequestAccepted]{Key: bus.KeyLLMRequest}
	FirstTokenTopic     = bus.Topic[FirstToken]{Key: bus.KeyLLMFirstToken}
	CompleteTopic       = bus.Topic[Complete]{Key: bus.KeyLLMComplete}
	ResidencyFaultTopic = bus.Topic[ResidencyFault]{Key: bus.KeyResidencyFault}
)

// InferenceKeys are the four inference artifact keys, in the order a
// request produces them (a residency fault may come any time in between).
var InferenceKeys = []string{bus.KeyLLMRequest, bus.KeyLLMFirstToken, bus.KeyResidencyFault, bus.KeyLLMComplete}

// inferencePrefix selects every inference key, refusals included.
const inferencePrefix = "inference/llm."

// SubscribeInference subscribes mod to every inference event with one
// prefix selector (refusals, bus.KeyRefusal, included).
func SubscribeInference(b *bus.MessageBus, mod bus.Module) (*bus.Subscription, error) {
	return b.SubscribeArtifact(bus.Prefix(inferencePrefix), mod)
}

// InferenceSelectors returns one Exact selector per InferenceKeys entry,
// for a Module's ArtifactSelectors.
func InferenceSelectors() []bus.Selector {
	s := make([]bus.Selector, len(InferenceKeys))
	for i, k := range InferenceKeys {
		s[i] = bus.Exact(k)
	}
	return s
}

// Millis is a duration that JSON encodes as fractional milliseconds, the
// unit llama.cpp's timings use.
type Millis time.Duration

// D returns m as a time.Duration.
func (m Millis) D() time.Duration { return time.Duration(m) }

// MarshalJSON writes the milliseconds with microsecond precision.
func (m Millis) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, float64(m)/1e6, 'f', 3, 64), nil
}

// UnmarshalJSON reads milliseconds.
func (m *Millis) UnmarshalJSON(b []byte) error {
	var f float64
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("engine: milliseconds: %w", err)
	}
	*m = Millis(f * 1e6)
	return nil
}

// RequestAccepted is published (bus.KeyLLMRequest) when Generate admits a
// request to the queue.
type RequestAccepted struct {
	ID           uuid.UUID `json:"id"`
	Persona      string    `json:"persona"`
	Model        string    `json:"model"`
	Adapter      string    `json:"adapter,omitempty"`
	PromptTokens int       `json:"prompt_tokens"`
	MaxTokens    int       `json:"max_tokens"`
	Queued       int       `json:"queued"` // requests waiting ahead of it and running
	Time         time.Time `json:"time"`
}

// FirstToken is published (bus.KeyLLMFirstToken) when a request's first
// token is sampled: its prompt is in the KV cache.
type FirstToken struct {
	ID               uuid.UUID `json:"id"`
	Persona          string    `json:"persona"`
	PromptTokens     int       `json:"prompt_tokens"`
	CachedTokens     int       `json:"cached_tokens"`  // of the prompt, those not decoded again (Request.NoPromptCache)
	QueueWait        Millis    `json:"queue_ms"`       // accepted until its first decode
	PromptEval       Millis    `json:"prompt_eval_ms"` // first decode until the first token
	TimeToFirstToken Millis    `json:"ttft_ms"`        // accepted until the first token
}

// Complete is published (bus.KeyLLMComplete) when a request ends, for any
// reason.
type Complete struct {
	ID               uuid.UUID  `json:"id"`
	Persona          string     `json:"persona"`
	StopReason       StopReason `json:"stop_reason"`
	PromptTokens     int        `json:"prompt_tokens"`
	CachedTokens     int        `json:"cached_tokens"` // of the prompt, those not decoded again
	CompletionTokens int        `json:"completion_tokens"`
	TokensPerSecond  float64    `json:"tokens_per_second"` // generation only
	PromptEval       Millis     `json:"prompt_eval_ms"`
	Generation       Millis     `json:"generation_ms"`
	Total            Millis     `json:"total_ms"` // accepted until done
	Error            string     `json:"error,omitempty"`
}

// ResidencyFault is published (bus.KeyResidencyFault) when a decode had to
// page an MoE expert in before the layer could use it. ID is the request
// whose token was routed to the expert first in that decode.
type ResidencyFault struct {
	ID       uuid.UUID `json:"id"`
	Persona  string    `json:"persona"`
	Layer    int       `json:"layer"`
	Expert   int       `json:"expert"`
	Bytes    int64     `json:"bytes"`
	Latency  Millis    `json:"latency_ms"`
	From     string    `json:"from"` // tier names, genome.TierRole.String
	To       string    `json:"to"`
	Artifact uuid.UUID `json:"artifact"`
}
