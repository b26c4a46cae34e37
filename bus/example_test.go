package bus_test

import (
	"fmt"

	"github.com/strata-llm/strata/bus"
)

type PageFault struct {
	Page  int    `json:"page"`
	Layer string `json:"layer"`
}

func Example() {
	b := bus.New()
	faults := bus.Topic[PageFault]{Key: bus.KeyPageFault}

	// Artifact selectors compare whole keys; event patterns are colon names.
	b.SubscribeArtifact(bus.Prefix("genome/"), bus.ModuleFuncs{
		ModuleName: "pager-stats",
		Artifact: func(a bus.Artifact) {
			pf, err := faults.Decode(a.Payload) // a Go value or JSON bytes
			fmt.Println(a.Key, pf.Page, pf.Layer, err)
		},
	})
	b.Subscribe("engine:*:token", bus.ModuleFuncs{
		ModuleName: "tokens",
		Event:      func(ev bus.Event) error { fmt.Println(ev.Name, ev.Payload); return nil },
	})

	faults.Publish(b, PageFault{Page: 3, Layer: "blk.0"})
	faults.PublishJSON(b, PageFault{Page: 4, Layer: "blk.1"})
	b.Publish("engine:s1:token", "hello")
	fmt.Println(b.Publish("genome/working_set", nil))
	// Output:
	// genome/working_set.page_fault 3 blk.0 <nil>
	// genome/working_set.page_fault 4 blk.1 <nil>
	// engine:s1:token hello
	// bus: invalid artifact key "genome/working_set" at byte 18: missing '.' between surface and event
}
