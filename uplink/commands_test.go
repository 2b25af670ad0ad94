package uplink

import (
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

type cmdRecorder struct {
	mu  sync.Mutex
	got []string // equipment + " " + payload, retained marked
}

func (h *cmdRecorder) Handle(topic, equipment string, payload []byte, retained bool, reply func([]byte)) {
	h.mu.Lock()
	r := ""
	if retained {
		r = " retained"
	}
	h.got = append(h.got, equipment+" "+string(payload)+r)
	h.mu.Unlock()
	reply([]byte(`{"result":"ok"}`))
}

func (h *cmdRecorder) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.got...)
}

// TestCommandsSubscribedAndAnswered: a command on <equipment>/cmd reaches
// the handler with its equipment and retained flag, the reply goes to the
// gateway's cmd_result topic, and nothing else (data, status) is taken
// for a command.
func TestCommandsSubscribedAndAnswered(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	h := &cmdRecorder{}
	cfg := testConfig(b.url())
	cfg.Commands = h
	src := newMemSource()
	r := startUplink(t, cfg, src)
	r.waitConnected(t)
	mes := subscribe(t, b.url(), "linegate/plant-a/assembly/line1/_gateway/line1-pc/cmd_result")
	testkit.WaitFor(t, long, "command subscription", func() bool {
		tok := mes.c.Publish("linegate/plant-a/assembly/line1/press01/cmd", 1, false, `{"id":"x"}`)
		tok.WaitTimeout(time.Second)
		return len(h.calls()) > 0
	})
	if got := h.calls()[0]; got != `press01 {"id":"x"}` {
		t.Errorf("handler got %q", got)
	}
	testkit.WaitFor(t, long, "cmd_result", func() bool { return len(mes.received()) > 0 })
	if m := mes.received()[0]; m.payload != `{"result":"ok"}` || m.retained {
		t.Errorf("result %+v", m)
	}
	// A retained command reaches the handler marked as such.
	tok := mes.c.Publish("linegate/plant-a/assembly/line1/oven02/cmd", 1, true, `{"id":"r"}`)
	tok.WaitTimeout(time.Second)
	b.kick(testClientID)
	testkit.WaitFor(t, long, "retained command after reconnect", func() bool {
		for _, c := range h.calls() {
			if c == `oven02 {"id":"r"} retained` {
				return true
			}
		}
		return false
	})
	for _, c := range h.calls() {
		if c[:7] != "press01" && c[:6] != "oven02" {
			t.Errorf("unexpected command %q", c)
		}
	}
}
