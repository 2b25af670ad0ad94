package uplink

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPacer(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	type step struct {
		at       time.Duration // since t0
		want     int
		got      int
		waitOver time.Duration // when got is 0: the wait is more than this
	}
	cases := []struct {
		name   string
		rate   float64
		window int
		steps  []step
	}{
		{"burst then rate", 100, 64, []step{
			{0, 64, 10, 0},                      // burst = rate/10
			{0, 1, 0, 9 * time.Millisecond},     // empty: next in 10ms
			{10 * time.Millisecond, 5, 1, 0},    // one token per 10ms
			{510 * time.Millisecond, 64, 10, 0}, // saved up to the burst only
			{1510 * time.Millisecond, 3, 3, 0},  // a partial take leaves the rest
			{1510 * time.Millisecond, 64, 7, 0}, // ... for the next take
			{1510 * time.Millisecond, 1, 0, 9 * time.Millisecond},
		}},
		{"slow rate, burst of one", 2, 64, []step{
			{0, 10, 1, 0},
			{100 * time.Millisecond, 10, 0, 399 * time.Millisecond},
			{500 * time.Millisecond, 10, 1, 0},
		}},
		{"burst capped by the window", 10000, 8, []step{
			{0, 100, 8, 0},
			{time.Second, 100, 8, 0},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := newPacer(c.rate, c.window)
			for i, s := range c.steps {
				n, wait := p.take(t0.Add(s.at), s.want)
				if n != s.got {
					t.Fatalf("step %d: took %d, want %d", i, n, s.got)
				}
				if n == 0 && wait <= s.waitOver {
					t.Fatalf("step %d: wait %v, want more than %v", i, wait, s.waitOver)
				}
				if n > 0 && wait != 0 {
					t.Fatalf("step %d: wait %v with tokens taken", i, wait)
				}
			}
		})
	}
}

// timedPub is a data publish as the broker saw it, with when and on which
// connection (counted by the online status that opens each).
type timedPub struct {
	seq        uint64
	historical bool
	at         time.Time
	conn       int
}

// recordData records the data publishes a broker receives, in order.
func recordData(b *testBroker) func() []timedPub {
	var mu sync.Mutex
	var pubs []timedPub
	conn := -1
	b.hook.setOnPublish(func(p brokerPub) {
		mu.Lock()
		defer mu.Unlock()
		if p.topic == statusTopic && strings.Contains(string(p.payload), `"online"`) {
			conn++
			return
		}
		var d dataMsg
		if !isDataTopic(p.topic) || json.Unmarshal(p.payload, &d) != nil {
			return
		}
		pubs = append(pubs, timedPub{d.Seq, d.Historical, time.Now(), conn})
	})
	return func() []timedPub {
		mu.Lock()
		defer mu.Unlock()
		return append([]timedPub(nil), pubs...)
	}
}

// checkLanes checks what the MES rule of replay.go promises: after
// de-duplication every seq 1..total arrived; on each connection historical
// and live messages each arrive in seq order, and every historical seq is
// below every live one (the lanes split at the boundary). It returns the
// number of duplicates.
func checkLanes(t *testing.T, pubs []timedPub, total int) (dups int) {
	t.Helper()
	type laneState struct{ lastHist, lastLive, maxHist, minLive uint64 }
	conns := map[int]*laneState{}
	seen := map[uint64]bool{}
	for _, p := range pubs {
		seen[p.seq] = true
		c := conns[p.conn]
		if c == nil {
			c = &laneState{}
			conns[p.conn] = c
		}
		last := &c.lastLive
		if p.historical {
			last = &c.lastHist
			c.maxHist = max(c.maxHist, p.seq)
		} else if c.minLive == 0 {
			c.minLive = p.seq
		}
		if p.seq <= *last {
			t.Fatalf("connection %d: seq %d (historical=%v) after %d: lane out of order", p.conn, p.seq, p.historical, *last)
		}
		*last = p.seq
	}
	for i, c := range conns {
		if c.minLive != 0 && c.maxHist >= c.minLive {
			t.Fatalf("connection %d: historical seq %d is not below the first live seq %d", i, c.maxHist, c.minLive)
		}
	}
	for s := uint64(1); s <= uint64(total); s++ {
		if !seen[s] {
			t.Fatalf("seq %d never arrived (of %d)", s, total)
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct seqs, want %d", len(seen), total)
	}
	return len(pubs) - total
}

// TestReplayRateKeepsLiveFlowing: a backlog found at connect drains at the
// configured rate, oldest first, while messages created meanwhile go out at
// once, ahead of it.
func TestReplayRateKeepsLiveFlowing(t *testing.T) {
	const backlog, live, rate = 300, 60, 100.0
	b := startBroker(t, "127.0.0.1:0")
	pubs := recordData(b)
	src := newMemSource()
	src.addN(backlog) // waited in the buffer: the replay lane
	cfg := testConfig(b.url())
	cfg.ReplayRate = rate
	r := startUplink(t, cfg, src)
	r.waitConnected(t)
	testkit.WaitFor(t, long, "replay under way", func() bool { return testutil.ToFloat64(r.u.met.replaying) == 1 || len(pubs()) > 0 })
	connected := time.Now()

	// Live production while the backlog drains: one message per 10ms,
	// the pace of a device, not a synchronisation.
	for range live {
		src.addN(1)
		time.Sleep(10 * time.Millisecond)
	}
	waitDrained(t, src)
	got := pubs()
	dups := checkLanes(t, got, backlog+live)
	if dups != 0 {
		t.Errorf("%d duplicates without an outage", dups)
	}

	var firstHist, lastHist, firstLive time.Time
	var hist, liveN int
	liveBeforeLastHist := 0
	for _, p := range got {
		if p.historical {
			hist++
			if firstHist.IsZero() {
				firstHist = p.at
			}
			lastHist = p.at
			if p.seq > backlog {
				t.Errorf("seq %d created after connect is historical", p.seq)
			}
		} else {
			liveN++
			if firstLive.IsZero() {
				firstLive = p.at
			}
			if p.seq <= backlog {
				t.Errorf("backlog seq %d published as live", p.seq)
			}
		}
	}
	for _, p := range got {
		if !p.historical && p.at.Before(lastHist) {
			liveBeforeLastHist++
		}
	}
	if hist != backlog || liveN != live {
		t.Fatalf("%d historical, %d live; want %d, %d", hist, liveN, backlog, live)
	}
	// The rate: a token bucket cannot send the backlog faster than
	// (backlog - burst) / rate from its first take, whatever the machine's
	// speed; one more burst of slack covers the first publish reaching the
	// broker after that take.
	burst := rate / 10
	minDrain := time.Duration((backlog - 2*burst) / rate * float64(time.Second))
	if d := lastHist.Sub(firstHist); d < minDrain {
		t.Errorf("backlog of %d drained in %v, faster than %v allowed by replay_rate %v", backlog, d, minDrain, rate)
	}
	// Live messages did not wait behind the backlog.
	if liveBeforeLastHist == 0 {
		t.Errorf("no live message went out before the backlog was done (first live %v, last historical %v)",
			firstLive.Sub(connected), lastHist.Sub(connected))
	}
	if v := testutil.ToFloat64(r.u.met.replaying); v != 0 {
		t.Errorf("replaying gauge %v after the backlog drained", v)
	}
	t.Logf("backlog %d at %v/s drained in %v; %d of %d live messages went out during the replay",
		backlog, rate, lastHist.Sub(firstHist).Round(time.Millisecond), liveBeforeLastHist, live)
}

// TestReplayLanesAcrossReconnect: the connection drops in the middle of a
// paced replay; the next connection replays from the oldest unacknowledged
// message, and the MES rule (de-duplicate, then each lane in seq order)
// still finds every seq, with at most MaxInflight duplicates.
func TestReplayLanesAcrossReconnect(t *testing.T) {
	const backlog, inflight = 400, 16
	b := startBroker(t, "127.0.0.1:0")
	pubs1 := recordData(b)
	src := newMemSource()
	src.addN(backlog)
	cfg := testConfig(b.url())
	cfg.ReplayRate = 400
	cfg.MaxInflight = inflight
	r := startUplink(t, cfg, src)
	r.waitConnected(t)
	src.addN(20) // live on the first connection
	testkit.WaitFor(t, long, "part of the backlog", func() bool { return len(pubs1()) >= 150 })
	b.kick(testClientID)
	testkit.WaitFor(t, long, "reconnect", func() bool { st := r.u.Status(); return st.Connected && st.Reconnects == 1 })
	src.addN(20) // live on the second connection
	waitDrained(t, src)
	all := pubs1()
	dups := checkLanes(t, all, backlog+40)
	n1 := 0
	for _, p := range all {
		if p.conn == 0 {
			n1++
		}
	}
	if dups > inflight {
		t.Errorf("%d duplicates, want at most MaxInflight=%d", dups, inflight)
	}
	t.Logf("%d published on the first connection, %d on the second, %d duplicates", n1, len(all)-n1, dups)
}

func TestReplayRateValidated(t *testing.T) {
	for _, rate := range []float64{-1} {
		cfg := testConfig("tcp://127.0.0.1:1")
		cfg.ReplayRate = rate
		if _, err := New(cfg, newMemSource()); err == nil {
			t.Errorf("replay rate %v accepted", rate)
		}
	}
}
