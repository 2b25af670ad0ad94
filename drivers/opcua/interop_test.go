package opcua

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/testdata/peers"
)

// Interop tests against a node-opcua server (testdata/peers): they skip
// unless LINEGATE_INTEROP=1, and then a missing node or node_modules fails.

var nodeTags = []Tag{
	{Name: "temp", Node: "ns=1;s=Oven.Temperature"},
	{Name: "parts", BrowsePath: "Objects/Line1/Oven/Parts"},
	{Name: "recipe", BrowsePath: "Line1/Oven/Recipe"},
	{Name: "heater", Node: "ns=1;s=Oven.Heater"},
	{Name: "sensor4", Node: "ns=1;s=Oven.Sensor4"},
}

func checkNodeSamples(t *testing.T, get func(int) drivers.Sample) {
	t.Helper()
	if s := get(0); s.Quality != drivers.Good || !isType[float64](s.Value) || s.TS.IsZero() {
		t.Errorf("temp: %#v %v %v %v", s.Value, s.Quality, s.Err, s.TS)
	}
	if s := get(1); s.Quality != drivers.Good || !isType[uint64](s.Value) {
		t.Errorf("parts: %#v %v %v", s.Value, s.Quality, s.Err)
	}
	if s := get(2); s.Value != "PCB-4711" {
		t.Errorf("recipe: %#v %v %v", s.Value, s.Quality, s.Err)
	}
	if s := get(3); s.Value != true {
		t.Errorf("heater: %#v %v %v", s.Value, s.Quality, s.Err)
	}
	if s := get(4); s.Quality != drivers.Bad || s.Err == nil || !strings.Contains(s.Err.Error(), "BadSensorFailure") {
		t.Errorf("sensor4: %#v %v %v", s.Value, s.Quality, s.Err)
	}
}

func TestInteropOPCUANone(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, User: "op", Password: "secret"})
	t.Run("poll", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: nodeTags})
		out := make([]drivers.Sample, len(nodeTags))
		if err := d.Read(context.Background(), out); err != nil {
			t.Fatal(err)
		}
		checkNodeSamples(t, func(i int) drivers.Sample { return out[i] })
	})
	t.Run("subscribe", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: nodeTags, Interval: 200 * time.Millisecond})
		r := subscribe(t, d)
		testkit.WaitFor(t, 15*time.Second, "every tag", func() bool {
			for i := range nodeTags {
				if _, ok := r.sample(i); !ok {
					return false
				}
			}
			return true
		})
		checkNodeSamples(t, func(i int) drivers.Sample { s, _ := r.sample(i); return s })
		first, _ := r.sample(0)
		testkit.WaitFor(t, 15*time.Second, "the temperature to move", func() bool { s, _ := r.sample(0); return s.Value != first.Value })
	})
}

func TestInteropOPCUASecureUsername(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, User: "op", Password: "secret"})
	pkiDir := t.TempDir()
	cfg := Config{Endpoint: srv.Endpoint, SecurityPolicy: "Basic256Sha256", SecurityMode: "SignAndEncrypt",
		Username: "op", Password: "secret", PKIDir: pkiDir, Tags: nodeTags}
	out := make([]drivers.Sample, len(nodeTags))

	// The server's certificate is unknown: refused, copied to rejected/.
	d := newDriver(t, cfg)
	err := d.Read(context.Background(), out)
	var ue *UntrustedError
	if !errors.As(err, &ue) {
		t.Fatalf("first read: %v, want an untrusted server certificate", err)
	}
	p, _ := OpenPKI(pkiDir)
	if _, err := p.Trust(ue.Thumbprint); err != nil {
		t.Fatal(err)
	}

	d = newDriver(t, cfg)
	if err := d.Read(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	checkNodeSamples(t, func(i int) drivers.Sample { return out[i] })
	if p, m := d.Security(); p != "Basic256Sha256" || m != "SignAndEncrypt" {
		t.Errorf("session %s/%s", p, m)
	}

	// A wrong password is a clear error.
	bad := cfg
	bad.Password = "wrong"
	d = newDriver(t, bad)
	err = d.Read(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), "BadUserAccessDenied") || !strings.Contains(err.Error(), `user "op"`) {
		t.Fatalf("wrong password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}
}

// TestInteropOPCUAClientRefused: a server that does not accept unknown
// clients refuses linegate's certificate until it is trusted there.
func TestInteropOPCUAClientRefused(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: false})
	pkiDir := t.TempDir()
	cfg := Config{Endpoint: srv.Endpoint, SecurityPolicy: "auto", PKIDir: pkiDir, Tags: nodeTags[:1]}
	d := newDriver(t, cfg)
	if err := d.loadPKI(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.pki.Trust(writeDER(t, srvCert(t, srv.Endpoint))); err != nil {
		t.Fatal(err)
	}
	out := make([]drivers.Sample, 1)
	err := d.Read(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), "refused linegate's certificate") || !strings.Contains(err.Error(), Thumbprint(d.own.DER)) {
		t.Fatalf("read: %v, want the server refusing linegate's certificate", err)
	}
	// node-opcua watches its trusted folder: the copy takes effect soon.
	srv.TrustClient(d.own.DER, "linegate")
	d = newDriver(t, cfg)
	var last error
	testkit.WaitFor(t, 20*time.Second, "the server to accept linegate's certificate", func() bool {
		d.nextDial = time.Time{} // retry now, not after the backoff
		last = d.Read(context.Background(), out)
		return last == nil
	})
	if out[0].Quality != drivers.Good {
		t.Errorf("sample %v %v", out[0].Quality, out[0].Err)
	}
}

// TestInteropOPCUARestart: the server restarts in the middle of a
// subscribed run: tags go bad, the device down, then up with values again.
func TestInteropOPCUARestart(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: nodeTags[:3], Interval: 200 * time.Millisecond, Timeout: time.Second, ConnectTimeout: 3 * time.Second})
	r := subscribe(t, d)
	up := func() bool { n, err := r.lastState(); return n > 0 && err == nil }
	testkit.WaitFor(t, 15*time.Second, "device up", up)
	srv.Stop()
	testkit.WaitFor(t, 20*time.Second, "device down", func() bool { _, err := r.lastState(); return err != nil })
	for i := range 3 {
		if s, _ := r.sample(i); s.Quality != drivers.Bad {
			t.Errorf("tag %d while down: %v", i, s.Quality)
		}
	}
	srv.Start()
	testkit.WaitFor(t, 40*time.Second, "device up again", up)
	testkit.WaitFor(t, 15*time.Second, "good values again", func() bool {
		for i := range 3 {
			if s, _ := r.sample(i); s.Quality != drivers.Good {
				return false
			}
		}
		return true
	})
}

// srvCert fetches the server certificate from its endpoints.
func srvCert(t *testing.T, endpoint string) []byte {
	t.Helper()
	eps, err := opcuaGetEndpoints(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range eps {
		if len(ep.ServerCertificate) > 0 {
			return ep.ServerCertificate
		}
	}
	t.Fatal("no server certificate")
	return nil
}

func writeDER(t *testing.T, der []byte) string {
	t.Helper()
	path := t.TempDir() + "/server.der"
	if err := os.WriteFile(path, der, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func opcuaGetEndpoints(endpoint string) ([]*ua.EndpointDescription, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return gopcua.GetEndpoints(ctx, endpoint)
}

var quietTags = []Tag{
	{Name: "setpoint", Node: "ns=1;s=Quiet.Setpoint"},
	{Name: "mode", Node: "ns=1;s=Quiet.Mode"},
	{Name: "batch", BrowsePath: "Objects/Line1/Quiet/Batch"},
}

// soakFor is how long a soak watches a quiet subscription: long enough for
// several of the keep-alive periods (10 s) and idle-publish timeouts that
// used to drop the session every 20-30 s; 3 minutes under LINEGATE_LONG.
func soakFor() time.Duration {
	if os.Getenv("LINEGATE_LONG") == "1" {
		return 3 * time.Minute
	}
	return 70 * time.Second
}

// TestInteropOPCUAQuiet subscribes, with the defaults a new user has, to
// nodes that never change. The subscription is only keep-alives after the
// initial values: the session must stay (one CreateSession on the server),
// with no bad reading and no device down.
func TestInteropOPCUAQuiet(t *testing.T) {
	peers.Interop(t)
	t.Parallel() // mostly waiting on node-opcua: the quiet soak overlaps the others
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: quietTags, Interval: time.Second})
	r := subscribe(t, d)
	testkit.WaitFor(t, 20*time.Second, "the initial values", func() bool {
		for i := range quietTags {
			if s, ok := r.sample(i); !ok || s.Quality != drivers.Good {
				return false
			}
		}
		return true
	})
	initial := r.total()
	soak := soakFor()
	end := time.Now().Add(soak)
	for time.Now().Before(end) && len(r.notGood()) == 0 && len(r.allStates()) <= 1 {
		time.Sleep(100 * time.Millisecond)
	}
	sessions, bad, states := srv.Sessions(), r.notGood(), r.allStates()
	t.Logf("quiet soak %v: sessions created %d, bad readings %d, states %v, changes delivered %d (initial %d), keep-alives %d",
		soak, sessions, len(bad), states, r.total(), initial, d.keepAlives.Load())
	if sessions != 1 {
		t.Errorf("the server saw %d CreateSession calls, want 1", sessions)
	}
	for _, c := range bad {
		t.Errorf("tag %s: %v %v", quietTags[c.Index].Name, c.Sample.Quality, c.Sample.Err)
	}
	if len(states) != 1 || states[0] != nil {
		t.Errorf("device states %v, want one up", states)
	}
	for i, want := range []any{180.5, int64(3), "B-0815"} {
		if s, _ := r.sample(i); s.Value != want || s.Quality != drivers.Good {
			t.Errorf("tag %s: %#v %v, want %#v good", quietTags[i].Name, s.Value, s.Quality, want)
		}
	}
}

// allGood tells whether every tag's last sample is good.
func allGood(r *recorder, n int) bool {
	for i := range n {
		if s, ok := r.sample(i); !ok || s.Quality != drivers.Good {
			return false
		}
	}
	return true
}

// badWith returns the first bad change whose error holds text.
func badWith(r *recorder, text string) (drivers.Change, bool) {
	for _, c := range r.notGood() {
		if c.Sample.Err != nil && strings.Contains(c.Sample.Err.Error(), text) {
			return c, true
		}
	}
	return drivers.Change{}, false
}

// TestInteropOPCUASubscriptionFaults: the server ends the subscription
// (deleted, as when its lifetime ran out: Publish answers BadNoSubscription)
// or stops answering Publish while the session lives (reads go on). Either
// way linegate re-creates the subscription in the same session, with the
// tags bad and the reason in between, and no device down.
func TestInteropOPCUASubscriptionFaults(t *testing.T) {
	peers.Interop(t)
	t.Parallel()
	const keepAlive = 2 * time.Second
	for _, tc := range []struct {
		name  string
		fault func(srv *peers.NodeOPCUA)
		mend  func(srv *peers.NodeOPCUA)
		want  string // in the tags' error while the fault lasts
	}{
		{"deleted", (*peers.NodeOPCUA).DeleteSubscriptions, nil, "subscription gone on the server (BadNoSubscription)"},
		{"silent", func(srv *peers.NodeOPCUA) { srv.FreezePublish(true) }, func(srv *peers.NodeOPCUA) { srv.FreezePublish(false) },
			"subscription silent: no data or keep-alive for 2.5 keep-alive periods of 2s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
			d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: quietTags, Interval: 200 * time.Millisecond, KeepAlive: keepAlive})
			r := subscribe(t, d)
			testkit.WaitFor(t, 20*time.Second, "the initial values", func() bool { return allGood(r, len(quietTags)) })
			// A keep-alive first: the subscription is known to be live.
			testkit.WaitFor(t, 10*keepAlive, "a keep-alive", func() bool { return d.keepAlives.Load() > 0 })
			start := time.Now()
			tc.fault(srv)
			testkit.WaitFor(t, 15*keepAlive, "the tags bad with "+tc.want, func() bool { _, ok := badWith(r, tc.want); return ok })
			t.Logf("%s: the tags went bad %v after the fault (keep-alive %v)", tc.name, time.Since(start).Round(10*time.Millisecond), keepAlive)
			if tc.mend != nil {
				tc.mend(srv)
			}
			testkit.WaitFor(t, 15*keepAlive, "good values again", func() bool { return allGood(r, len(quietTags)) })
			if n := srv.Sessions(); n != 1 {
				t.Errorf("the server saw %d CreateSession calls, want 1", n)
			}
			if states := r.allStates(); len(states) != 1 || states[0] != nil {
				t.Errorf("device states %v, want one up", states)
			}
			if d.recreated.Load() == 0 {
				t.Error("the subscription was not re-created")
			}
		})
	}
}

// TestInteropOPCUAHiddenLimit: the server states no operation limit but
// refuses more than 2 nodes per call with BadTooManyOperations. linegate
// halves its chunk in the session (no reconnect, no device down) and keeps
// the limit it learned across a reconnect: after the server restarts, no
// call is refused again.
func TestInteropOPCUAHiddenLimit(t *testing.T) {
	peers.Interop(t)
	t.Parallel()
	tags := append(append([]Tag{}, quietTags...), nodeTags[2], nodeTags[3])
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) {
			srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, HiddenLimit: 2})
			d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: tags, Interval: 200 * time.Millisecond, Timeout: time.Second, ConnectTimeout: 3 * time.Second})
			out := make([]drivers.Sample, len(tags))
			var good func() bool
			var r *recorder
			if mode == "poll" {
				good = func() bool {
					d.nextDial = time.Time{} // after a restart: now, not after the backoff
					if err := d.Read(context.Background(), out); err != nil {
						return false
					}
					for _, s := range out {
						if s.Quality != drivers.Good {
							return false
						}
					}
					return true
				}
			} else {
				r = subscribe(t, d)
				good = func() bool { return allGood(r, len(tags)) }
			}
			testkit.WaitFor(t, 20*time.Second, "every tag good", good)
			refused := srv.TooManyOperations()
			if refused == 0 {
				t.Fatal("the server refused no call: the test does not test the hidden limit")
			}
			if mode == "poll" {
				for range 3 {
					if !good() {
						t.Fatalf("read: %v", out)
					}
				}
			}
			if n := srv.Sessions(); n != 1 {
				t.Errorf("the server saw %d CreateSession calls, want 1", n)
			}
			if r != nil {
				if states := r.allStates(); len(states) != 1 || states[0] != nil {
					t.Errorf("device states %v, want one up", states)
				}
			}
			srv.Stop()
			if r != nil {
				testkit.WaitFor(t, 20*time.Second, "device down", func() bool { _, err := r.lastState(); return err != nil })
			}
			srv.Start()
			testkit.WaitFor(t, 40*time.Second, "every tag good after the restart", good)
			if n := srv.TooManyOperations(); n != refused {
				t.Errorf("the server refused %d calls after the restart: the learned limit was forgotten", n-refused)
			}
		})
	}
}

// TestInteropOPCUARenumber: the server restarts as after a PLC program
// download: its plant namespace has another index and the plant's nodes
// other numeric ids, while the old ids now name other nodes. Tags given as
// nsu= node ids and browse paths must read their own values again (before,
// the old ids read another node's value, good, and nsu= did not start).
func TestInteropOPCUARenumber(t *testing.T) {
	peers.Interop(t)
	t.Parallel()
	tags := []Tag{
		{Name: "a", Node: "nsu=urn:linegate:plant;s=Plant.A"},
		{Name: "b", BrowsePath: "Objects/Plant/B"},
		{Name: "c", BrowsePath: "Plant/C"},
	}
	want := []any{1.5, 2.5, 3.5}
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) {
			srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
			d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: tags, Interval: 200 * time.Millisecond, Timeout: time.Second, ConnectTimeout: 3 * time.Second})
			var get func(int) drivers.Sample
			out := make([]drivers.Sample, len(tags))
			if mode == "poll" {
				get = func(i int) drivers.Sample {
					if i == 0 {
						d.nextDial = time.Time{}
						_ = d.Read(context.Background(), out)
					}
					return out[i]
				}
			} else {
				r := subscribe(t, d)
				get = func(i int) drivers.Sample { s, _ := r.sample(i); return s }
			}
			own := func() bool {
				for i := range tags {
					if s := get(i); s.Quality != drivers.Good || s.Value != want[i] {
						return false
					}
				}
				return true
			}
			testkit.WaitFor(t, 20*time.Second, "each tag's own value", own)
			srv.Stop()
			srv.SetRenumber(true)
			if mode == "subscribe" {
				testkit.WaitFor(t, 20*time.Second, "the tags bad", func() bool { return get(0).Quality == drivers.Bad })
			}
			srv.Start()
			// Wrong values must never show as good on the way back.
			testkit.WaitFor(t, 40*time.Second, "each tag's own value after the renumbering restart", func() bool {
				for i := range tags {
					if s := get(i); s.Quality == drivers.Good && s.Value != want[i] {
						t.Fatalf("tag %s: %v good, the value of another node (want %v)", tags[i].Name, s.Value, want[i])
					}
				}
				return own()
			})
		})
	}
}

// TestInteropOPCUAClockAhead: a node whose SourceTimestamp is an hour ahead
// of the gateway (a PLC clock set wrong) is uncertain with the reason and
// timed by the gateway, in both modes; other tags stay good.
func TestInteropOPCUAClockAhead(t *testing.T) {
	peers.Interop(t)
	t.Parallel()
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	tags := []Tag{{Name: "ahead", Node: "ns=1;s=Clock.Ahead"}, nodeTags[2]}
	check := func(t *testing.T, get func(int) drivers.Sample) {
		t.Helper()
		if s := get(0); s.Quality != drivers.Uncertain || s.Value != 42.0 || !s.TS.IsZero() || s.Err == nil ||
			!strings.Contains(s.Err.Error(), "ahead of the gateway clock (max_clock_skew 5s): gateway time used") {
			t.Errorf("ahead: %#v %v %v ts %v", s.Value, s.Quality, s.Err, s.TS)
		}
		if s := get(1); s.Quality != drivers.Good || s.TS.IsZero() {
			t.Errorf("recipe: %#v %v %v ts %v", s.Value, s.Quality, s.Err, s.TS)
		}
	}
	t.Run("poll", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: tags})
		out := make([]drivers.Sample, len(tags))
		if err := d.Read(context.Background(), out); err != nil {
			t.Fatal(err)
		}
		check(t, func(i int) drivers.Sample { return out[i] })
	})
	t.Run("subscribe", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: tags, Interval: 200 * time.Millisecond})
		r := subscribe(t, d)
		testkit.WaitFor(t, 15*time.Second, "both tags", func() bool { _, a := r.sample(0); _, b := r.sample(1); return a && b })
		check(t, func(i int) drivers.Sample { s, _ := r.sample(i); return s })
	})
}

// TestInteropOPCUAPlainPassword: on a None endpoint the server offers a
// username token that sends the password unencrypted, before (first) or
// instead of (only) one that encrypts it. linegate takes the encrypting
// one; with none it refuses to log in unless allow_plain_password.
func TestInteropOPCUAPlainPassword(t *testing.T) {
	peers.Interop(t)
	t.Parallel()
	for _, tc := range []struct {
		name, offer string
		allow       bool
		login       string // the token the server saw, "" = none
		err         string
	}{
		{"encrypted first", "first", false, "username_basic256Sha256", ""},
		{"plain refused", "only", false, "", "would send the password unencrypted"},
		{"plain allowed", "only", true, "username_plain", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true, User: "op", Password: "secret", PlainPassword: tc.offer})
			d := newDriver(t, Config{Endpoint: srv.Endpoint, Username: "op", Password: "secret", AllowPlainPassword: tc.allow, Tags: nodeTags[2:3]})
			out := make([]drivers.Sample, 1)
			err := d.Read(context.Background(), out)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("read: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "allow_plain_password")):
				t.Fatalf("read: %v, want %q and the option", err, tc.err)
			}
			var want []string
			if tc.login != "" {
				want = []string{tc.login}
			}
			if got := srv.Logins(); !slices.Equal(got, want) {
				t.Errorf("the server saw logins %q, want %q", got, want)
			}
		})
	}
}
