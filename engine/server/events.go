package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/strata-llm/strata/bus"
)

// parseSelect reads the select parameters of /v1/events: a comma-separated
// list (the parameter may also repeat) of
//
//	genome/working_set.page_fault   an artifact key, matched exactly
//	inference/llm.*                 an artifact key prefix ("*" alone: every artifact)
//	data:users:*                    an event pattern (colon glob; "*" one segment, ">" the rest)
//
// No select means every artifact.
func parseSelect(values []string) (sels []bus.Selector, patterns []string, err error) {
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			switch {
			case item == "":
				continue
			case item == "*":
				sels = append(sels, bus.Prefix(""))
			case strings.Contains(item, "/"):
				sel := bus.Exact(item)
				if p, ok := strings.CutSuffix(item, "*"); ok {
					sel = bus.Prefix(p)
				}
				if err := sel.Validate(); err != nil {
					return nil, nil, err
				}
				sels = append(sels, sel)
			default:
				if err := bus.ValidPattern(item); err != nil {
					return nil, nil, err
				}
				patterns = append(patterns, item)
			}
		}
	}
	if len(sels) == 0 && len(patterns) == 0 {
		sels = []bus.Selector{bus.Prefix("")}
	}
	return sels, patterns, nil
}

// busMessage is an artifact or event on its way to a client.
type busMessage struct {
	key     string
	payload any
}

// events streams bus artifacts and events as server-sent events:
// "event: <key>", "data: <JSON payload>". A client that falls behind by
// more than Options.EventBuffer loses events; a comment line says how
// many. The bus delivers synchronously, so the subscriber only queues.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	sels, patterns, err := parseSelect(r.URL.Query()["select"])
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "select", err.Error())
		return
	}
	ch := make(chan busMessage, s.opts.EventBuffer)
	var dropped atomic.Uint64
	push := func(key string, payload any) {
		select {
		case ch <- busMessage{key, payload}:
		default:
			dropped.Add(1)
		}
	}
	mod := bus.ModuleFuncs{
		ModuleName: "http-events",
		Artifact:   func(a bus.Artifact) { push(a.Key, a.Payload) },
		Event:      func(ev bus.Event) error { push(ev.Name, ev.Payload); return nil },
	}
	b := s.e.Bus()
	var subs []*bus.Subscription
	defer func() {
		for _, sub := range subs {
			sub.Unsubscribe()
		}
	}()
	for _, sel := range sels {
		sub, err := b.SubscribeArtifact(sel, mod)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "select", err.Error())
			return
		}
		subs = append(subs, sub)
	}
	for _, p := range patterns {
		sub, err := b.Subscribe(p, mod)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "select", err.Error())
			return
		}
		subs = append(subs, sub)
	}
	s.streams.Add(1)
	defer s.streams.Add(-1)

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// A first comment says what the stream carries, so that a client
	// (or a typo in select) is not left with silence until something
	// matches.
	var hello strings.Builder
	hello.WriteString(": streaming")
	for _, sel := range sels {
		fmt.Fprintf(&hello, " %s", sel)
	}
	for _, p := range patterns {
		fmt.Fprintf(&hello, " event:%s", p)
	}
	hello.WriteString("\n\n")
	io.WriteString(w, hello.String())
	rc := http.NewResponseController(w)
	rc.Flush()
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	var seq, reported uint64
	var buf []byte
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.quit:
			return
		case <-tick.C:
			buf = append(buf[:0], ": keep-alive\n\n"...)
		case m := <-ch:
			raw, err := payloadJSON(m.payload)
			if err != nil {
				raw = []byte(strconv.Quote(err.Error()))
			}
			seq++
			buf = append(buf[:0], "event: "...)
			buf = append(buf, m.key...)
			buf = append(buf, "\nid: "...)
			buf = strconv.AppendUint(buf, seq, 10)
			buf = append(buf, "\ndata: "...)
			buf = append(buf, raw...)
			buf = append(buf, "\n\n"...)
		}
		if d := dropped.Load(); d != reported {
			buf = fmt.Appendf(buf, ": dropped %d events (client too slow)\n\n", d-reported)
			reported = d
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}

// payloadJSON encodes a payload; JSON payloads pass through.
func payloadJSON(p any) ([]byte, error) {
	switch v := p.(type) {
	case json.RawMessage:
		return v, nil
	case []byte:
		if json.Valid(v) {
			return v, nil
		}
	}
	return json.Marshal(p)
}
