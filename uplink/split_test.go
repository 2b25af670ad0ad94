package uplink

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/buffer"
)

// appendRecorder is an Appender that numbers messages like the buffer.
type appendRecorder struct {
	mu     sync.Mutex
	msgs   []buffer.Message
	events []buffer.Event
}

func (r *appendRecorder) Append(m buffer.Message) (uint64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.Readings = append([]buffer.Reading(nil), m.Readings...)
	m.Seq = uint64(len(r.msgs) + 1)
	r.msgs = append(r.msgs, m)
	return m.Seq, nil
}

func (r *appendRecorder) AppendEvent(e buffer.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func readings(n, valueLen int, ts time.Time) []buffer.Reading {
	rs := make([]buffer.Reading, n)
	for i := range rs {
		rs[i] = buffer.Reading{Tag: fmt.Sprintf("tag%03d", i), Value: strings.Repeat("x", valueLen), Unit: "mm", Quality: buffer.Good, TS: ts}
	}
	return rs
}

func TestSplitterKeepsEveryMessageUnderTheLimit(t *testing.T) {
	gw := Gateway{ID: "line1-pc", Site: "plant-a", Area: "assembly", Line: "line1"}
	ts := time.Date(2026, 11, 27, 10, 15, 2, 0, time.UTC)
	const limit = 4096
	huge := buffer.Reading{Tag: "zones", Value: strings.Repeat("z", 5000), Quality: buffer.Good, TS: ts}
	tests := []struct {
		name       string
		readings   []buffer.Reading
		wantParts  int
		wantTooBig []string
	}{
		{"fits", readings(10, 10, ts), 1, nil},
		{"exactly two", readings(40, 50, ts), 2, nil},
		{"many", readings(500, 20, ts), 0, nil},
		{"one too large alone", []buffer.Reading{huge}, 0, []string{"zones"}},
		{"too large in the middle", append(append(readings(3, 10, ts), huge), readings(2, 10, ts)...), 2, []string{"zones"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &appendRecorder{}
			s, err := NewSplitter(rec, SplitConfig{MaxMessageSize: limit, Gateway: gw})
			if err != nil {
				t.Fatal(err)
			}
			m := buffer.Message{Created: ts, Equipment: "press01", Class: "process", Readings: tt.readings}
			if _, err := s.Append(m); err != nil {
				t.Fatal(err)
			}
			if tt.wantParts > 0 && len(rec.msgs) != tt.wantParts {
				t.Errorf("%d messages, want %d", len(rec.msgs), tt.wantParts)
			}
			var got []buffer.Reading
			for _, p := range rec.msgs {
				if len(p.Readings) == 0 {
					t.Error("an empty message was appended")
				}
				topic := Topic("linegate", gw.Site, gw.Area, gw.Line, p.Equipment, p.Class)
				for _, hist := range []bool{false, true} {
					p.Seq = 18446744073709551615
					if n := PacketSize(topic, len(AppendJSON(nil, p, gw, hist))); n > limit {
						t.Errorf("a part of %d readings encodes to a %d-byte packet, over %d", len(p.Readings), n, limit)
					}
				}
				if p.Created != ts || p.Equipment != "press01" || p.Class != "process" {
					t.Errorf("part lost its header: %+v", p)
				}
				got = append(got, p.Readings...)
			}
			var want []buffer.Reading
			for _, r := range tt.readings {
				if r.Tag != "zones" {
					want = append(want, r)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("%d readings kept, want %d", len(got), len(want))
			}
			for i := range got {
				if got[i].Tag != want[i].Tag {
					t.Fatalf("reading %d is %s, want %s: order changed", i, got[i].Tag, want[i].Tag)
				}
			}
			var tooBig []string
			for _, e := range rec.events {
				if e.Type != EventReadingTooLarge {
					t.Errorf("event %s", e.Type)
					continue
				}
				for _, a := range e.Attrs {
					if a.Key == "tag" {
						tooBig = append(tooBig, a.Value.(string))
					}
				}
			}
			if fmt.Sprint(tooBig) != fmt.Sprint(tt.wantTooBig) {
				t.Errorf("reading_too_large for %v, want %v", tooBig, tt.wantTooBig)
			}
		})
	}
}

func TestSplitterRefusesTinyLimit(t *testing.T) {
	for _, n := range []int{-1, 100, MaxMessageSizeLimit + 1} {
		if _, err := NewSplitter(&appendRecorder{}, SplitConfig{MaxMessageSize: n}); err == nil {
			t.Errorf("max message size %d accepted", n)
		}
	}
}

type nopAppender struct{}

func (nopAppender) Append(buffer.Message) (uint64, error) { return 1, nil }
func (nopAppender) AppendEvent(buffer.Event) error        { return nil }

// The split sits on the collector's path for every message: a message that
// fits must cost no allocation.
func TestSplitterFitsWithoutAllocating(t *testing.T) {
	if raceOn {
		t.Skip("allocation counts differ under the race detector")
	}
	s, err := NewSplitter(nopAppender{}, SplitConfig{Gateway: Gateway{ID: "line1-pc", Site: "plant-a", Area: "assembly", Line: "line1"}})
	if err != nil {
		t.Fatal(err)
	}
	m := buffer.Message{Created: time.Now(), Equipment: "press01", Class: "process", Readings: readings(33, 8, time.Now())}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Append(m) }); n > 0 {
		t.Errorf("%v allocations per message that fits", n)
	}
}
