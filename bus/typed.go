package bus

import (
	"encoding/json"
	"reflect"
)

// Topic is a key bound to a payload type, so publishers and subscribers of
// one key agree on the Go type at compile time:
//
//	var PageFaults = bus.Topic[PageFault]{Key: bus.KeyPageFault}
//	err := PageFaults.Publish(b, PageFault{...})
//	pf, err := PageFaults.Decode(a.Payload)
type Topic[T any] struct {
	Key string
}

// Publish publishes v under t.Key as a T value (no encoding in process).
func (t Topic[T]) Publish(b *MessageBus, v T) error { return b.Publish(t.Key, v) }

// PublishJSON publishes v under t.Key encoded as JSON (a json.RawMessage),
// the form for payloads that cross a process boundary.
func (t Topic[T]) PublishJSON(b *MessageBus, v T) error { return PublishJSON(b, t.Key, v) }

// Decode converts a payload published on t to a T; see Decode.
func (t Topic[T]) Decode(payload any) (T, error) { return Decode[T](payload) }

// PublishJSON encodes v as JSON and publishes it under key as a
// json.RawMessage.
func PublishJSON(b *MessageBus, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return &PayloadError{Want: "JSON", Got: typeName(v), Err: err}
	}
	return b.Publish(key, json.RawMessage(raw))
}

// Decode converts payload to a T. It accepts a T, a non-nil *T, and JSON
// in a json.RawMessage, []byte or string, which it unmarshals into a T.
// Anything else is a *PayloadError wrapping ErrPayloadType.
func Decode[T any](payload any) (T, error) {
	var zero T
	switch p := payload.(type) {
	case T:
		return p, nil
	case *T:
		if p != nil {
			return *p, nil
		}
	case json.RawMessage:
		return unmarshal[T](p)
	case []byte:
		return unmarshal[T](p)
	case string:
		return unmarshal[T]([]byte(p))
	}
	return zero, &PayloadError{Want: reflect.TypeFor[T]().String(), Got: typeName(payload)}
}

func unmarshal[T any](data []byte) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		var zero T
		return zero, &PayloadError{Want: reflect.TypeFor[T]().String(), Got: "JSON", Err: err}
	}
	return v, nil
}

func typeName(v any) string {
	if v == nil {
		return "nil"
	}
	return reflect.TypeOf(v).String()
}
