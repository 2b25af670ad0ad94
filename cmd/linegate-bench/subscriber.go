package main

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// subscriber receives everything linegate publishes, checks that every seq
// arrives, and records latency (sample time of the oldest reading → now).
// Its session is persistent, so the outage loses nothing on its side.
type subscriber struct {
	client mqtt.Client

	mu         sync.Mutex
	first      time.Time // first data message
	seen       []uint8   // seen[seq-1]: how often seq arrived
	maxSeq     uint64
	msgs       int64
	readings   int64
	historical int64
	bytes      int64
	latencies  []float64 // ms, live messages while recording: sample → now
	pollMs     []float64 // the same messages: sample → message built
	pipeMs     []float64 // message built → now
	recording  bool
	samples    map[string][]byte // one payload per topic, for the limit
	sampleRd   map[string]int
	limitMsgs  int64
	arrivals   []arrival // while drainRec, every data message
	drainRec   bool
	bad        int64 // payloads the bench could not parse
}

func newSubscriber(addr string) (*subscriber, error) {
	s := &subscriber{samples: map[string][]byte{}, sampleRd: map[string]int{}}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("linegate-bench-sub").
		SetCleanSession(false).SetAutoReconnect(true).SetConnectRetry(true).
		SetConnectRetryInterval(100 * time.Millisecond).SetMaxReconnectInterval(200 * time.Millisecond).
		SetOrderMatters(false).SetProtocolVersion(4)
	opts.SetOnConnectHandler(func(c mqtt.Client) {
		c.Subscribe(topicPrefix+"/#", 1, s.onData)
		c.Subscribe(limitTopicPrefix+"/#", 1, s.onLimit)
	})
	s.client = mqtt.NewClient(opts)
	tok := s.client.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("subscriber: connect %s: %v", addr, tok.Error())
	}
	// The subscription is made in the connect handler; wait for it once so
	// nothing published from now on is missed.
	st := s.client.Subscribe(topicPrefix+"/#", 1, s.onData)
	if !st.WaitTimeout(10*time.Second) || st.Error() != nil {
		return nil, fmt.Errorf("subscriber: subscribe: %v", st.Error())
	}
	return s, nil
}

func (s *subscriber) close() { s.client.Disconnect(100) }

func (s *subscriber) onLimit(_ mqtt.Client, _ mqtt.Message) {
	s.mu.Lock()
	s.limitMsgs++
	s.mu.Unlock()
}

func (s *subscriber) onData(_ mqtt.Client, m mqtt.Message) {
	now := time.Now()
	p := m.Payload()
	if bytes.Contains([]byte(m.Topic()), []byte("/_gateway/")) {
		return // status and events carry no data seq
	}
	seq, hist, n, ts, created, ok := scanPayload(p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !ok {
		s.bad++
		return
	}
	if s.first.IsZero() {
		s.first = now
	}
	for uint64(len(s.seen)) < seq {
		s.seen = append(s.seen, make([]uint8, max(1024, len(s.seen)))...)
	}
	if s.seen[seq-1] < 255 {
		s.seen[seq-1]++
	}
	s.maxSeq = max(s.maxSeq, seq)
	s.msgs++
	s.readings += int64(n)
	s.bytes += int64(len(p))
	if s.drainRec {
		s.arrivals = append(s.arrivals, arrival{at: now, readings: n, hist: hist})
	}
	if hist {
		s.historical++
	} else if s.recording && !ts.IsZero() {
		s.latencies = append(s.latencies, ms(now.Sub(ts)))
		if !created.IsZero() {
			s.pollMs = append(s.pollMs, ms(created.Sub(ts)))
			s.pipeMs = append(s.pipeMs, ms(now.Sub(created)))
		}
	}
	if _, ok := s.samples[m.Topic()]; !ok {
		s.samples[m.Topic()] = append([]byte(nil), p...)
		s.sampleRd[m.Topic()] = n
	}
}

// counts is a snapshot of the subscriber's counters.
type counts struct {
	msgs, readings, historical int64
	maxSeq                     uint64
	first                      time.Time
}

func (s *subscriber) counts() counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return counts{msgs: s.msgs, readings: s.readings, historical: s.historical, maxSeq: s.maxSeq, first: s.first}
}

// record turns latency recording on (clearing what was recorded) or off.
func (s *subscriber) record(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.latencies, s.pollMs, s.pipeMs = s.latencies[:0], s.pollMs[:0], s.pipeMs[:0]
	}
	s.recording = on
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// spread is the p50, p99 and max of a series, in ms.
type spread struct{ p50, p99, max float64 }

func spreadOf(series []float64) spread {
	l := slices.Clone(series)
	if len(l) == 0 {
		return spread{}
	}
	slices.Sort(l)
	q := func(f float64) float64 { return l[min(len(l)-1, int(f*float64(len(l))))] }
	return spread{q(0.50), q(0.99), l[len(l)-1]}
}

// latency returns what was recorded: sample → subscriber, and its two
// parts, sample → message built (the device's reads: the first reading is
// stamped when its request went out) and message built → subscriber
// (buffer commit, uplink, broker); and the count.
func (s *subscriber) latency() (total, poll, pipe spread, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return spreadOf(s.latencies), spreadOf(s.pollMs), spreadOf(s.pipeMs), len(s.latencies)
}

// gaps counts the seqs in 1..upTo never received and those received twice
// or more (at-least-once delivery makes duplicates legal after an outage).
func (s *subscriber) gaps(upTo uint64) (missing, dups int64, firstMissing uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for seq := uint64(1); seq <= upTo; seq++ {
		var c uint8
		if seq <= uint64(len(s.seen)) {
			c = s.seen[seq-1]
		}
		switch {
		case c == 0:
			if missing == 0 {
				firstMissing = seq
			}
			missing++
		case c > 1:
			dups++
		}
	}
	return missing, dups, firstMissing
}

// payloadSample is one received payload, published again by the limit.
type payloadSample struct {
	Topic    string `json:"topic"`
	Payload  []byte `json:"payload"`
	Readings int    `json:"readings"`
}

func (s *subscriber) payloadSamples() []payloadSample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []payloadSample
	for t, p := range s.samples {
		out = append(out, payloadSample{Topic: t, Payload: p, Readings: s.sampleRd[t]})
	}
	slices.SortFunc(out, func(a, b payloadSample) int { return bytes.Compare([]byte(a.Topic), []byte(b.Topic)) })
	return out
}

// scanPayload picks seq, historical, the number of readings, the first
// reading's ts and the message's ts (when it was built) out of a
// linegate/v1 payload without decoding all of it:
// the subscriber must keep up with 100,000 readings/s on the same machine.
func scanPayload(p []byte) (seq uint64, hist bool, n int, ts, created time.Time, ok bool) {
	i := bytes.Index(p, []byte(`"seq":`))
	if i < 0 {
		return
	}
	j := i + 6
	for j < len(p) && p[j] >= '0' && p[j] <= '9' {
		j++
	}
	seq, err := strconv.ParseUint(string(p[i+6:j]), 10, 64)
	if err != nil || seq == 0 {
		return
	}
	hist = bytes.Contains(p, []byte(`"historical":true`))
	r := bytes.Index(p, []byte(`"readings":[`))
	if r < 0 {
		return
	}
	rd := p[r:]
	n = bytes.Count(rd, []byte(`{"tag":`))
	ts = scanTS(rd)
	created = scanTS(p[:r])
	return seq, hist, n, ts, created, true
}

// scanTS parses the first "ts" in p; zero if there is none.
func scanTS(p []byte) time.Time {
	k := bytes.Index(p, []byte(`"ts":"`))
	if k < 0 {
		return time.Time{}
	}
	rest := p[k+6:]
	e := bytes.IndexByte(rest, '"')
	if e <= 0 {
		return time.Time{}
	}
	ts, _ := time.Parse(time.RFC3339Nano, string(rest[:e]))
	return ts
}

// reset forgets seqs and counters: the next agent starts a fresh buffer.
func (s *subscriber) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.first, s.seen, s.maxSeq = time.Time{}, nil, 0
	s.msgs, s.readings, s.historical, s.bytes = 0, 0, 0, 0
	s.latencies, s.pollMs, s.pipeMs = s.latencies[:0], s.pollMs[:0], s.pipeMs[:0]
}

type arrival struct {
	at       time.Time
	readings int
	hist     bool
}

// recordDrain turns recording of arrivals on (clearing them) or off.
func (s *subscriber) recordDrain(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if on {
		s.arrivals = s.arrivals[:0]
	}
	s.drainRec = on
}

// drain measures the replay as the subscriber saw it: from the first to
// the last historical message, every message that arrived (live ones
// too: they share the uplink with the backlog).
func (s *subscriber) drain() (msgs, readings int64, secs float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first, last := -1, -1
	for i, a := range s.arrivals {
		if a.hist {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	if first < 0 || last == first {
		return 0, 0, 0
	}
	for _, a := range s.arrivals[first : last+1] {
		msgs++
		readings += int64(a.readings)
	}
	return msgs, readings, s.arrivals[last].at.Sub(s.arrivals[first].at).Seconds()
}
