package uplink

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/buffer"
	"github.com/linegate/linegate/testdata/peers"
)

// TestMaxMessageSizeMosquitto runs cycles bigger than a real Mosquitto's
// limit through a real buffer. Without the split the uplink loops (over
// max_packet_size Mosquitto disconnects it at each resend of the same seq)
// or loses (over message_size_limit Mosquitto sends the PUBACK and drops the
// message); with uplink.max_message_size every seq reaches the MES, and the
// one reading too big for any message is announced by reading_too_large.
func TestMaxMessageSizeMosquitto(t *testing.T) {
	peers.Interop(t)
	const limit = 4096
	brokers := []struct {
		name, conf string
		// what the broker does to an oversized message without the split
		loops bool
	}{
		{"max_packet_size", fmt.Sprintf("max_packet_size %d", limit), true},
		{"message_size_limit", fmt.Sprintf("message_size_limit %d", limit), false},
	}
	for _, br := range brokers {
		t.Run(br.name, func(t *testing.T) {
			m := peers.StartMosquitto(t, peers.MosquittoOptions{ExtraConfig: br.conf})
			t.Run("without split", func(t *testing.T) {
				q := sizeQueue(t)
				mes := subscribe(t, m.URL, "linegate/#")
				cfg := testConfig(m.URL)
				cfg.ClientID = "linegate-nosplit"
				cfg.MaxPacket = MaxMessageSizeLimit // as before the key existed
				cfg.AckTimeout = 5 * time.Second
				appendCycles(t, q, nil)
				created := q.Stats().NextSeq - 1
				r := startUplink(t, cfg, q)
				if br.loops {
					testkit.WaitFor(t, long, "three reconnects on the same seq", func() bool { return r.u.Status().Reconnects >= 3 })
					r.stop(t)
					if st := q.Stats(); st.Messages == 0 {
						t.Fatal("the buffer drained: the oversized message was not refused")
					}
				} else {
					testkit.WaitFor(t, long, "the buffer drained", func() bool { return q.Stats().Messages == 0 })
					testkit.WaitFor(t, long, "the small seq 1 at the MES", func() bool { s, _ := mesSeqs(t, mes, created, false); return s[1] })
				}
				seen, _ := mesSeqs(t, mes, created, false)
				missing := 0
				for seq := uint64(1); seq <= created; seq++ {
					if !seen[seq] {
						missing++
					}
				}
				t.Logf("without split: created %d, delivered %d, missing %d, reconnects %d", created, len(seen), missing, r.u.Status().Reconnects)
				if missing == 0 {
					t.Error("every seq arrived without the split: the broker's limit was not hit")
				}
			})
			t.Run("split", func(t *testing.T) {
				q := sizeQueue(t)
				mes := subscribe(t, m.URL, "linegate/#")
				cfg := testConfig(m.URL)
				cfg.ClientID = "linegate-split"
				cfg.MaxPacket = limit
				s, err := NewSplitter(q, SplitConfig{MaxMessageSize: limit, Gateway: Gateway{ID: cfg.GatewayID, Site: cfg.Site, Area: cfg.Area, Line: cfg.Line}})
				if err != nil {
					t.Fatal(err)
				}
				appendCycles(t, q, s)
				created := q.Stats().NextSeq - 1
				r := startUplink(t, cfg, q)
				var seen map[uint64]bool
				var tooLarge int
				for deadline := time.Now().Add(long); ; time.Sleep(10 * time.Millisecond) {
					seen, tooLarge = mesSeqs(t, mes, created, true)
					if len(seen) == int(created) && tooLarge == 1 {
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("MES saw seqs %v of 1..%d and %d reading_too_large events", seen, created, tooLarge)
					}
				}
				t.Logf("split: created %d (from 3 cycles), delivered %d, missing 0, reconnects %d, reading_too_large %d",
					created, len(seen), r.u.Status().Reconnects, tooLarge)
				if n := r.u.Status().Reconnects; n != 0 {
					t.Errorf("%d reconnects: a message was refused", n)
				}
			})
			t.Run("buffered before the limit", func(t *testing.T) {
				// Messages stored unsplit (an older version, a larger limit)
				// are dropped with a buffer_dropped event, never resent.
				q := sizeQueue(t)
				mes := subscribe(t, m.URL, "linegate/#")
				cfg := testConfig(m.URL)
				cfg.ClientID = "linegate-stored"
				cfg.MaxPacket = limit
				appendCycles(t, q, nil)
				created := q.Stats().NextSeq - 1
				r := startUplink(t, cfg, q)
				testkit.WaitFor(t, long, "the buffer drained", func() bool { return q.Stats().Messages == 0 })
				var dropped []uint64
				testkit.WaitFor(t, long, "the buffer_dropped event", func() bool {
					dropped = nil
					for _, msg := range mes.received() {
						if msg.topic == eventsTopic && strings.Contains(msg.payload, `"reason":"message_too_large"`) {
							var e struct {
								DroppedSeqFrom uint64 `json:"dropped_seq_from"`
							}
							if err := json.Unmarshal([]byte(msg.payload), &e); err != nil {
								t.Fatal(err)
							}
							dropped = append(dropped, e.DroppedSeqFrom)
						}
					}
					return len(dropped) == 2
				})
				seen, _ := mesSeqs(t, mes, created, false)
				for _, d := range dropped {
					seen[d] = true
				}
				for seq := uint64(1); seq <= created; seq++ {
					if !seen[seq] {
						t.Errorf("seq %d neither delivered nor announced", seq)
					}
				}
				if n := r.u.Status().Reconnects; n != 0 {
					t.Errorf("%d reconnects", n)
				}
			})
		})
	}
}

func sizeQueue(t *testing.T) *buffer.Queue {
	t.Helper()
	q, err := buffer.Open(buffer.Options{Path: filepath.Join(t.TempDir(), "buffer.db"), MaxSize: 16 << 20, CommitInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return q
}

// appendCycles appends three cycles: a small one, one of 120 readings
// (about 12 KB in one message), and one with a 6 KB string between small
// readings. s nil appends to q unsplit.
func appendCycles(t *testing.T, q *buffer.Queue, s *Splitter) {
	t.Helper()
	var app Appender = q
	if s != nil {
		app = s
	}
	now := time.Now().UTC()
	cycles := [][]buffer.Reading{
		readings(2, 5, now),
		readings(120, 20, now),
		append(readings(3, 5, now), buffer.Reading{Tag: "zones", Value: strings.Repeat("z", 6000), Quality: buffer.Good, TS: now}),
	}
	for _, rs := range cycles {
		if _, err := app.Append(buffer.Message{Created: now, Equipment: "press01", Class: "process", Readings: rs}); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Flush(); err != nil {
		t.Fatal(err)
	}
}

// mesSeqs returns the data seqs the MES received up to max and the number
// of reading_too_large events; with check, a message over the limit fails
// the test.
func mesSeqs(t *testing.T, mes *subscriber, max uint64, check bool) (map[uint64]bool, int) {
	seen := map[uint64]bool{}
	tooLarge := 0
	for _, m := range mes.received() {
		switch {
		case m.topic == eventsTopic && strings.Contains(m.payload, `"event":"reading_too_large"`):
			tooLarge++
		case isDataTopic(m.topic):
			if check && PacketSize(m.topic, len(m.payload)) > 4096 {
				t.Errorf("a %d-byte message reached the MES", len(m.payload))
			}
			if d := decodeData(t, []byte(m.payload)); d.Seq <= max {
				seen[d.Seq] = true
			}
		}
	}
	return seen, tooLarge
}
