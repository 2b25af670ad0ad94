package main

// Store and forward (buffer/README.md) proven with real processes: the linegate
// binary, Mosquitto, the simulated press line, kill -9, a stalling proxy, a
// full disk. The rig is in saf_rig_test.go. Durations are scaled down so the
// set runs in well under four minutes (a 15 s outage at 100 ms polling
// instead of a minute); LINEGATE_LONG=1 runs the real minute.

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/testdata/peers"
)

// TestSAFOutage (1): the broker is unreachable for a while; when it is back
// every seq arrives, in order, the buffered ones historical, duplicates at
// most max_inflight.
func TestSAFOutage(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{devices: 2})
	r.start()
	testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })

	outage := 15 * time.Second
	if safLong() {
		outage = time.Minute
	}
	down := time.Now()
	r.outage(outage)
	up := time.Now()
	backlog := r.mustStatus().Buffer.Messages
	last := r.waitDrained(90 * time.Second)

	all := r.mes.all()
	d := checkDelivery(t, all, false)
	if d.duplicates > r.opts.maxInflight {
		t.Errorf("%d duplicates, want at most max_inflight=%d", d.duplicates, r.opts.maxInflight)
	}
	if d.maxSeq < last {
		t.Fatalf("max seq %d < %d", d.maxSeq, last)
	}
	var during, histDuring int
	for _, a := range all {
		if !a.data() {
			continue
		}
		// Created while the agent could not reach the broker: buffered.
		if a.ts.After(down.Add(time.Second)) && a.ts.Before(up) {
			during++
			if a.historical {
				histDuring++
			}
		}
	}
	if during == 0 || histDuring != during {
		t.Errorf("%d of %d messages created during the outage are historical", histDuring, during)
	}
	// The backlog at reconnect is larger than at "up": the agent's backoff
	// (up to 30 s) may leave it buffering a while after the broker is back.
	n, rate, took := drainRate(all, up)
	t.Logf("outage %v at %.0f msgs/s: backlog %d messages when the broker came back, %d historical drained in %v (%.0f msgs/s), %d duplicates, %d distinct seqs",
		outage, r.perSecond(), backlog, n, took.Round(time.Millisecond), rate, d.duplicates, d.distinct)
}

// TestSAFKill9 (2): kill -9 during an outage and again in the middle of the
// drain. After each restart seq continues, no seq is missing at the MES
// (the messages a kill loses were never committed, so their seqs are
// reused), and what a kill loses is within the commit window.
func TestSAFKill9(t *testing.T) {
	t.Parallel()
	// A paced replay keeps the drain long enough to be killed in the middle.
	r := newRig(t, rigOptions{devices: 2, replayRate: 100})
	p := r.start()
	testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })

	r.proxy.set(proxyDown)
	r.proxy.cut()
	time.Sleep(4 * time.Second) // outage: the backlog builds
	kill1 := p.kill9(t)
	p = r.start() // still cut off
	time.Sleep(2 * time.Second)
	r.proxy.set(proxyUp)
	drainStart := time.Now()
	testkit.WaitFor(t, 60*time.Second, "the drain under way", func() bool {
		n, _, _ := drainRate(r.mes.all(), drainStart)
		return n >= 100
	})
	st := r.mustStatus()
	if st.Buffer.Messages < 50 {
		t.Fatalf("the backlog is almost gone (%d): not mid-drain", st.Buffer.Messages)
	}
	kill2 := p.kill9(t)
	r.start()
	last := r.waitDrained(90 * time.Second)

	all := r.mes.all()
	d := checkDelivery(t, all, true)
	if d.maxSeq < last {
		t.Fatalf("max seq %d < %d", d.maxSeq, last)
	}
	// Each kill may lose the messages of the last commit window (50 ms, and
	// the commit's own fsync): at 100 ms polling one poll per equipment and
	// class, two with a slow fsync.
	bound := r.opts.devices * 3 * 2
	for i, k := range []time.Time{kill1, kill2} {
		lost, span := crashWindow(all, k)
		t.Logf("kill %d: lost %d messages, crash window %v", i+1, lost, span.Round(time.Millisecond))
		if lost > bound {
			t.Errorf("kill %d lost %d messages, more than the commit window allows (%d)", i+1, lost, bound)
		}
	}
	// Duplicates: what was in flight, plus acknowledgements the kill caught
	// before their commit.
	t.Logf("%d distinct seqs, %d duplicates", d.distinct, d.duplicates)
	if d.duplicates > 2*r.opts.maxInflight+int(r.opts.replayRate) {
		t.Errorf("%d duplicates", d.duplicates)
	}
}

// TestSAFBrokerRestartMidDrain (3): the broker restarts in the middle of a
// drain, with and without Mosquitto persistence.
//
// Without persistence the broker forgets what it had acknowledged and not
// yet delivered, and the MES's session: that loss is the broker's, so the
// test holds the agent off (proxy down) until the MES has subscribed again,
// as an MES with a persistent broker never needs to. With persistence the
// MES has a persistent session and nothing is held off.
func TestSAFBrokerRestartMidDrain(t *testing.T) {
	t.Parallel()
	for _, persist := range []bool{false, true} {
		t.Run(fmt.Sprintf("persistence=%v", persist), func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{devices: 2, replayRate: 100, persistence: persist})
			r.start()
			testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })
			r.outage(4 * time.Second)
			drainStart := time.Now()
			testkit.WaitFor(t, 60*time.Second, "the drain under way", func() bool {
				n, _, _ := drainRate(r.mes.all(), drainStart)
				return n >= 80
			})
			if !persist {
				r.proxy.set(proxyDown)
			}
			r.broker.Stop()
			r.broker.Start()
			testkit.WaitFor(t, 20*time.Second, "MES back", r.mes.subscribed.Load)
			r.proxy.set(proxyUp)
			testkit.WaitFor(t, 60*time.Second, "agent reconnected", func() bool {
				st, ok := r.status()
				return ok && st.Uplink.Connected && st.Uplink.Reconnects >= 2
			})
			last := r.waitDrained(90 * time.Second)
			d := checkDelivery(t, r.mes.all(), true)
			if d.maxSeq < last {
				t.Fatalf("max seq %d < %d", d.maxSeq, last)
			}
			if d.duplicates > 2*r.opts.maxInflight {
				t.Errorf("%d duplicates over two lost connections, want at most %d", d.duplicates, 2*r.opts.maxInflight)
			}
			t.Logf("%d distinct seqs, %d duplicates", d.distinct, d.duplicates)
		})
	}
}

// TestSAFStallingBroker (4): a broker that accepts the connection and then
// acknowledges nothing. The buffer takes the load, memory and goroutines
// stay bounded, polling goes on; once the broker answers again everything
// arrives.
func TestSAFStallingBroker(t *testing.T) {
	t.Parallel()
	r := newRig(t, rigOptions{devices: 4})
	r.start()
	testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })
	goroutines0 := r.metric("go_goroutines")

	r.proxy.set(proxyStall)
	r.proxy.cut()
	stall := 15 * time.Second
	if safLong() {
		stall = 75 * time.Second // past the keepalive (30 s + 10 s): reconnects into the stall
	}
	deadline := time.Now().Add(stall)
	polls0, msgs0 := r.polls(), r.mustStatus().Buffer.Messages
	var maxRSS, maxG float64
	for time.Now().Before(deadline) {
		maxRSS = max(maxRSS, r.metric("process_resident_memory_bytes"))
		maxG = max(maxG, r.metric("go_goroutines"))
		time.Sleep(250 * time.Millisecond) // sampling period
	}
	st := r.mustStatus()
	polls1 := r.polls()
	if polls1 <= polls0+uint64(r.opts.devices)*10 {
		t.Errorf("polls went from %d to %d in %v of stall: polling stalled too", polls0, polls1, stall)
	}
	if st.Buffer.Messages <= msgs0+100 {
		t.Errorf("buffer went from %d to %d messages: it did not take the load", msgs0, st.Buffer.Messages)
	}
	if st.Uplink.Inflight > r.opts.maxInflight {
		t.Errorf("%d in flight, max_inflight %d", st.Uplink.Inflight, r.opts.maxInflight)
	}
	const rssBound = 256 << 20
	if maxRSS > rssBound {
		t.Errorf("resident memory reached %.0f MiB during the stall (bound %d MiB)", maxRSS/(1<<20), rssBound>>20)
	}
	if maxG > 2*goroutines0+30 {
		t.Errorf("goroutines rose from %.0f to %.0f during the stall", goroutines0, maxG)
	}
	t.Logf("stall %v: buffer %d → %d messages, polls %d → %d, RSS max %.1f MiB, goroutines %.0f → max %.0f",
		stall, msgs0, st.Buffer.Messages, polls0, polls1, maxRSS/(1<<20), goroutines0, maxG)

	r.proxy.set(proxyUp)
	r.proxy.cut()
	last := r.waitDrained(120 * time.Second)
	d := checkDelivery(t, r.mes.all(), false)
	if d.maxSeq < last {
		t.Fatalf("max seq %d < %d", d.maxSeq, last)
	}
	if g := r.metric("go_goroutines"); g > goroutines0+10 {
		t.Errorf("goroutines %.0f after the stall, %.0f before", g, goroutines0)
	}
}

// TestSAFBufferCap (5): with a small max_size the file never grows past it,
// the oldest messages go, the overflow event with the dropped range reaches
// the broker once it is back, a metric counts the drops, and `linegate
// buffer compact` gives the space back.
func TestSAFBufferCap(t *testing.T) {
	t.Parallel()
	const maxSize = 256 << 10
	r := newRig(t, rigOptions{devices: 6, maxSize: "256KiB"})
	p := r.start()
	testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })

	// Measure the file while the broker is away and the buffer fills.
	stop := make(chan struct{})
	sizes := make(chan int64, 1)
	go func() {
		var biggest int64
		defer func() { sizes <- biggest }()
		for {
			if st, err := os.Stat(r.bufPath); err == nil {
				biggest = max(biggest, st.Size())
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	r.proxy.set(proxyDown)
	r.proxy.cut()
	testkit.WaitFor(t, 60*time.Second, "the buffer overflowing", func() bool { return r.mustStatus().Buffer.Dropped > 0 })
	time.Sleep(3 * time.Second) // keep overflowing a while
	r.proxy.set(proxyUp)
	last := r.waitDrained(60 * time.Second)
	dropped := r.metric("linegate_buffer_dropped_messages_total")
	close(stop)
	biggest := <-sizes
	if biggest > maxSize {
		t.Errorf("buffer file reached %d bytes, max_size %d", biggest, maxSize)
	}
	if dropped == 0 {
		t.Error("linegate_buffer_dropped_messages_total is 0 after drops")
	}

	// The MES: every seq arrived or is in an overflow event's range.
	testkit.WaitFor(t, 10*time.Second, "buffer_overflow event", func() bool { return len(r.mes.events("buffer_overflow")) > 0 })
	inRange := map[uint64]bool{}
	var announced uint64
	for _, e := range r.mes.events("buffer_overflow") {
		from, to, n := uint64(e["dropped_seq_from"].(float64)), uint64(e["dropped_seq_to"].(float64)), uint64(e["dropped"].(float64))
		if from == 0 || to < from || n == 0 {
			t.Fatalf("overflow event %v", e)
		}
		for s := from; s <= to; s++ {
			inRange[s] = true
		}
		announced += n
	}
	// A dropped range may begin with messages that were in flight when the
	// connection was cut: the broker got them, their PUBACK was lost, the
	// buffer kept them and then dropped them as the oldest. At most
	// max_inflight of them; everything else in a range never arrived.
	got := map[uint64]bool{}
	arrivedDropped := 0
	for _, a := range r.mes.dataArrivals() {
		if !got[a.seq] && inRange[a.seq] {
			arrivedDropped++
		}
		got[a.seq] = true
	}
	if arrivedDropped > r.opts.maxInflight {
		t.Errorf("%d seqs arrived although an overflow event says they were dropped (max_inflight %d)", arrivedDropped, r.opts.maxInflight)
	}
	var missing uint64
	for s := uint64(1); s <= last; s++ {
		if !got[s] {
			missing++
			if !inRange[s] {
				t.Fatalf("seq %d is missing and no event says so", s)
			}
		}
	}
	if missing+uint64(arrivedDropped) != announced || float64(announced) != dropped {
		t.Errorf("%d seqs missing at the MES (+%d in flight at the cut), events announce %d, metric %v", missing, arrivedDropped, announced, dropped)
	}
	t.Logf("max_size %d: file at most %d bytes; %d messages dropped (%d of them had reached the broker before the cut), announced by %d event(s)",
		maxSize, biggest, announced, arrivedDropped, len(r.mes.events("buffer_overflow")))

	p.term(t)
	before, _ := os.Stat(r.bufPath)
	out, err := exec.Command(r.bin, "buffer", "compact", "-c", r.cfgPath).CombinedOutput()
	if err != nil {
		t.Fatalf("buffer compact: %v\n%s", err, out)
	}
	after, _ := os.Stat(r.bufPath)
	if after.Size() >= before.Size() {
		t.Errorf("compact: %d → %d bytes", before.Size(), after.Size())
	}
	t.Logf("buffer compact: %d → %d bytes (%s)", before.Size(), after.Size(), strings.TrimSpace(string(out)))
}

// TestSAFCorruptBuffer (6): a corrupt or truncated buffer file at start is
// moved aside, a fresh one is used, an event and a loud log say so, and seq
// continues after the last one ever used.
func TestSAFCorruptBuffer(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		spoil func(t *testing.T, path string)
	}{
		{"garbage", func(t *testing.T, path string) {
			b := make([]byte, 64<<10)
			rand.Read(b)
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"truncated", func(t *testing.T, path string) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{devices: 1})
			// A first run leaves a file with messages the broker never got.
			r.proxy.set(proxyDown)
			p := r.start()
			testkit.WaitFor(t, 20*time.Second, "a backlog", func() bool { return r.mustStatus().Buffer.Messages >= 30 })
			p.term(t)
			lastSeq := r.mustStatusAfter(p)
			c.spoil(t, r.bufPath)

			r.proxy.set(proxyUp)
			p = r.start()
			testkit.WaitFor(t, 20*time.Second, "buffer_corrupt event", func() bool { return len(r.mes.events("buffer_corrupt")) > 0 })
			ev := r.mes.events("buffer_corrupt")[0]
			moved, _ := ev["moved_to"].(string)
			if !strings.HasPrefix(moved, r.bufPath+".corrupt-") {
				t.Fatalf("event %v", ev)
			}
			if _, err := os.Stat(moved); err != nil {
				t.Fatalf("moved-aside file: %v", err)
			}
			if !strings.Contains(p.log(), "BUFFER FILE CORRUPT") {
				t.Errorf("no loud log line:\n%s", p.log())
			}
			testkit.WaitFor(t, 20*time.Second, "data on the fresh buffer", func() bool { return len(r.mes.dataArrivals()) > 0 })
			first := r.mes.dataArrivals()[0].seq
			if first <= lastSeq {
				t.Errorf("fresh buffer starts at seq %d, the old one reached %d: seqs reused", first, lastSeq)
			}
			t.Logf("old file moved to %s; seq continues at %d after %d", filepath.Base(moved), first, lastSeq)
		})
	}
}

// mustStatusAfter is the last seq a stopped run used, from its sidecar
// (a clean stop writes the exact last seq).
func (r *safRig) mustStatusAfter(_ *safProc) uint64 {
	r.t.Helper()
	b, err := os.ReadFile(r.bufPath + ".seq")
	if err != nil {
		r.t.Fatal(err)
	}
	var v uint64
	var magic1, magic2, state string
	if _, err := fmt.Sscan(string(b), &magic1, &magic2, &v, &state); err != nil || state != "clean" {
		r.t.Fatalf("sidecar %q: %v", b, err)
	}
	return v
}

// TestSAFDiskFull (7): the file system under the buffer fills up (a 4 MiB
// tmpfs, max_size well above it) while the broker is down. A full disk is a
// full buffer: the oldest messages go, a buffer_overflow event says which,
// the memory stays bounded. The broker comes back while the disk is still
// full: the acknowledgements free room on their own and the backlog
// drains; then the disk gets room again and the agent notices by itself.
func TestSAFDiskFull(t *testing.T) {
	t.Parallel()
	peers.Interop(t)
	mnt := peers.MountTmpfs(t, "4m")
	r := newRig(t, rigOptions{devices: 6, bufDir: mnt, maxSize: "64MiB"})
	p := r.start()
	testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })

	// Broker down, and the disk filled but for 256 KiB that the backlog
	// takes within seconds.
	r.proxy.set(proxyDown)
	r.proxy.cut()
	filler := filepath.Join(mnt, "filler")
	peers.FillDisk(t, filler, 256<<10)
	testkit.WaitFor(t, 60*time.Second, "linegate_buffer_disk_full 1", func() bool {
		return r.metric("linegate_buffer_disk_full") == 1
	})
	testkit.WaitFor(t, 30*time.Second, "drops on the full disk", func() bool {
		return r.metric("linegate_buffer_dropped_messages_total") > 0
	})
	time.Sleep(3 * time.Second) // keep the disk full a while: drops, retries, no crash
	if !p.alive() {
		t.Fatalf("linegate died on a full disk:\n%s", p.log())
	}
	rss := r.metric("process_resident_memory_bytes")

	// The broker is back; the disk is still full.
	r.proxy.set(proxyUp)
	last := r.waitDrained(90 * time.Second)
	if r.metric("linegate_buffer_disk_full") != 1 {
		t.Fatal("the disk is still full, the gauge says otherwise")
	}
	rss = max(rss, r.metric("process_resident_memory_bytes"))

	// Room again: the agent finds out by itself.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "linegate_buffer_disk_full 0", func() bool {
		return r.metric("linegate_buffer_disk_full") == 0
	})
	last = max(last, r.waitDrained(60*time.Second))

	// Created, delivered, missing (each in an announced range), duplicated.
	inRange := map[uint64]bool{}
	var announced uint64
	testkit.WaitFor(t, 10*time.Second, "buffer_overflow event", func() bool { return len(r.mes.events("buffer_overflow")) > 0 })
	for _, e := range r.mes.events("buffer_overflow") {
		from, to, n := uint64(e["dropped_seq_from"].(float64)), uint64(e["dropped_seq_to"].(float64)), uint64(e["dropped"].(float64))
		for s := from; s <= to; s++ {
			inRange[s] = true
		}
		announced += n
	}
	got := map[uint64]bool{}
	dups := 0
	for _, a := range r.mes.dataArrivals() {
		if got[a.seq] {
			dups++
		}
		got[a.seq] = true
	}
	var missing, unannounced uint64
	for s := uint64(1); s <= last; s++ {
		if !got[s] {
			missing++
			if !inRange[s] {
				unannounced++
				if unannounced <= 5 {
					t.Errorf("seq %d is missing and no event says so", s)
				}
			}
		}
	}
	if n := r.metric("linegate_collector_append_errors_total"); n != 0 {
		t.Errorf("%v messages refused by the buffer: drops must be announced instead", n)
	}
	if dups > 2*r.opts.maxInflight {
		t.Errorf("%d duplicates, want at most 2×max_inflight (two reconnects)", dups)
	}
	if !strings.Contains(p.log(), "buffer: disk full") || !strings.Contains(p.log(), "disk has room again") {
		t.Errorf("no clear disk-full and recovery lines in the log:\n%s", tail(p.log(), 3000))
	}
	t.Logf("disk full (4 MiB tmpfs): created %d, delivered %d, missing %d (%d of them announced in %d buffer_overflow events, which count %d), duplicated %d; RSS at most %.1f MiB",
		last, len(got), missing, missing-unannounced, len(r.mes.events("buffer_overflow")), announced, dups, rss/(1<<20))
}

// TestSAFReplayRate (8): after an outage the backlog drains in seq order at
// uplink.replay_rate while live readings keep flowing.
func TestSAFReplayRate(t *testing.T) {
	t.Parallel()
	const rate = 50.0
	r := newRig(t, rigOptions{devices: 2, replayRate: rate})
	r.start()
	testkit.WaitFor(t, 20*time.Second, "live messages", func() bool { return r.mes.has(10) })
	r.outage(5 * time.Second)
	up := time.Now()
	backlog := r.mustStatus().Buffer.Messages
	r.waitDrained(90 * time.Second)

	all := r.mes.all()
	d := checkDelivery(t, all, true)
	n, got, took := drainRate(all, up)
	var lastHist time.Time
	for _, a := range all {
		if a.data() && a.historical && a.at.After(up) {
			lastHist = a.at
		}
	}
	liveDuring := 0
	for _, a := range all {
		if a.data() && !a.historical && a.at.After(up) && a.at.Before(lastHist) {
			liveDuring++
		}
	}
	// A token bucket of burst rate/10 cannot go faster than this, whatever
	// the machine.
	if minTook := time.Duration(float64(n)-2*rate/10) * time.Second / time.Duration(rate); took < minTook {
		t.Errorf("%d historical messages in %v: faster than replay_rate %v allows (%v)", n, took, rate, minTook)
	}
	if liveDuring == 0 {
		t.Error("no live message arrived while the backlog drained")
	}
	t.Logf("backlog %d: %d historical in %v (%.1f msgs/s at replay_rate %v); %d live messages during the replay; %d duplicates",
		backlog, n, took.Round(time.Millisecond), got, rate, liveDuring, d.duplicates)
}
