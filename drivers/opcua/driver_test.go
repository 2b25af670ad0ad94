package opcua

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	gopcua "github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/sim"
)

// typeCases are the oven's variables with what a sample of each must hold.
var typeCases = []struct {
	node    string
	check   func(v any) bool
	quality drivers.Quality
	err     string
}{
	{"Zone1.Temperature", isType[float64], drivers.Good, ""},
	{"Setpoint", func(v any) bool { return v == 250.5 }, drivers.Good, ""}, // Float, shortest decimal
	{"State", isType[int64], drivers.Good, ""},
	{"Heater", isType[bool], drivers.Good, ""},
	{"Parts", isType[uint64], drivers.Good, ""},
	{"Recipe", func(v any) bool { return v == "PCB-4711" }, drivers.Good, ""},
	{"LastCycle", func(v any) bool {
		s, ok := v.(string)
		tm, err := time.Parse(time.RFC3339Nano, s)
		return ok && err == nil && strings.HasSuffix(s, "Z") && tm.Year() == 2026
	}, drivers.Good, ""},
	{"CycleTime", isType[uint64], drivers.Good, ""},
	{"ZoneTemperatures", func(v any) bool {
		a, ok := v.([]any)
		if !ok || len(a) != 3 {
			return false
		}
		for _, e := range a {
			if _, ok := e.(float64); !ok {
				return false
			}
		}
		return true
	}, drivers.Good, ""},
	{"Mode", func(v any) bool { return v == "Automatic" }, drivers.Good, ""},
	{"Draft", isType[int64], drivers.Good, ""},
	{"AlarmCode", func(v any) bool { return v == uint64(0) }, drivers.Good, ""},
	{"Trim", func(v any) bool { return v == int64(-3) }, drivers.Good, ""},
	{"Energy", isType[int64], drivers.Good, ""},
	{"RunSeconds", isType[uint64], drivers.Good, ""},
	{"Humidity", func(v any) bool { return v == 41.5 }, drivers.Uncertain, "UncertainLastUsableValue"},
	{"Sensor4", func(v any) bool { return v == nil }, drivers.Bad, "BadSensorFailure"},
	{"NoSuchNode", func(v any) bool { return v == nil }, drivers.Bad, "BadNodeIdUnknown"},
}

func isType[T any](v any) bool { _, ok := v.(T); return ok }

func typeTags(o *sim.Oven) []Tag {
	tags := make([]Tag, len(typeCases))
	for i, c := range typeCases {
		tags[i] = Tag{Name: c.node, Node: o.NodeID(c.node)}
	}
	return tags
}

func checkSample(t *testing.T, i int, s drivers.Sample) {
	t.Helper()
	c := typeCases[i]
	if s.Quality != c.quality || !c.check(s.Value) {
		t.Errorf("%s: got %#v (%T) %v %v, want quality %v", c.node, s.Value, s.Value, s.Quality, s.Err, c.quality)
	}
	switch {
	case c.err == "" && s.Err != nil:
		t.Errorf("%s: unexpected error %v", c.node, s.Err)
	case c.err != "" && (s.Err == nil || !strings.Contains(s.Err.Error(), c.err)):
		t.Errorf("%s: error %v, want one naming %s", c.node, s.Err, c.err)
	}
	if c.node != "NoSuchNode" && (s.TS.IsZero() || time.Since(s.TS) > time.Minute) {
		t.Errorf("%s: ts %v, want the source timestamp", c.node, s.TS)
	}
}

func TestPollEveryType(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: typeTags(o)})
	out := make([]drivers.Sample, len(typeCases))
	for range 2 { // the second read reuses the session
		if err := d.Read(context.Background(), out); err != nil {
			t.Fatal(err)
		}
		for i, s := range out {
			checkSample(t, i, s)
		}
	}
}

func TestSubscribeEveryType(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: typeTags(o)})
	r := subscribe(t, d)
	testkit.WaitFor(t, 30*time.Second, "a sample of every tag", func() bool {
		for i := range typeCases {
			if _, ok := r.sample(i); !ok {
				return false
			}
		}
		return true
	})
	for i := range typeCases {
		s, _ := r.sample(i)
		checkSample(t, i, s)
	}
	if n, err := r.lastState(); n == 0 || err != nil {
		t.Errorf("state: %v (%d calls), want nil: device up", err, n)
	}
	// The process moves: the zone temperature changes keep coming.
	before := r.total()
	testkit.WaitFor(t, 30*time.Second, "more changes", func() bool { return r.total() > before+5 })
}

func TestBrowsePath(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	tags := []Tag{
		{Name: "z2", BrowsePath: "Objects/Oven01/Zone2/Temperature"},
		{Name: "recipe", BrowsePath: "Oven01/1:Recipe"},
		{Name: "missing", BrowsePath: "Objects/Oven01/Zone9/Temperature"},
		{Name: "wrongns", BrowsePath: "Objects/Oven01/2:Recipe"},
	}
	check := func(t *testing.T, get func(i int) drivers.Sample) {
		if s := get(0); s.Quality != drivers.Good || !isType[float64](s.Value) {
			t.Errorf("z2: %#v %v %v", s.Value, s.Quality, s.Err)
		}
		if s := get(1); s.Value != "PCB-4711" {
			t.Errorf("recipe: %#v %v %v", s.Value, s.Quality, s.Err)
		}
		for _, i := range []int{2, 3} {
			if s := get(i); s.Quality != drivers.Bad || s.Err == nil || !strings.Contains(s.Err.Error(), "no \"") {
				t.Errorf("%s: %#v %v %v, want bad: not found", tags[i].Name, s.Value, s.Quality, s.Err)
			}
		}
	}
	t.Run("poll", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags})
		out := make([]drivers.Sample, len(tags))
		if err := d.Read(context.Background(), out); err != nil {
			t.Fatal(err)
		}
		check(t, func(i int) drivers.Sample { return out[i] })
	})
	t.Run("subscribe", func(t *testing.T) {
		d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags})
		r := subscribe(t, d)
		testkit.WaitFor(t, 30*time.Second, "every tag", func() bool {
			for i := range tags {
				if _, ok := r.sample(i); !ok {
					return false
				}
			}
			return true
		})
		check(t, func(i int) drivers.Sample { s, _ := r.sample(i); return s })
	})
}

// TestChunks reads and monitors more nodes than the gopcua server's
// MaxNodesPerRead (32): the driver splits them.
func TestChunks(t *testing.T) {
	const n = 150
	o := startOven(t, sim.OvenOptions{LoadVariables: n})
	tags := make([]Tag, n)
	for i := range tags {
		tags[i] = Tag{Name: fmt.Sprint("load", i), Node: o.NodeID(fmt.Sprint("Load.", i))}
	}
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags})
	out := make([]drivers.Sample, n)
	if err := d.Read(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	for i, s := range out {
		if s.Quality != drivers.Good {
			t.Fatalf("tag %d: %v %v", i, s.Quality, s.Err)
		}
	}
	if d.sess.maxRead != 32 {
		t.Errorf("maxRead %d, want the server's 32", d.sess.maxRead)
	}
}

func TestRestartPoll(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	tags := []Tag{{Name: "z1", Node: o.NodeID("Zone1.Temperature")}, {Name: "bp", BrowsePath: "Oven01/Recipe"}}
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags, Timeout: time.Second, ConnectTimeout: 2 * time.Second})
	out := make([]drivers.Sample, len(tags))
	ctx := context.Background()
	if err := d.Read(ctx, out); err != nil {
		t.Fatal(err)
	}
	o.Stop()
	err := d.Read(ctx, out)
	if err == nil {
		t.Fatal("read after the server stopped: no error")
	}
	for i, s := range out {
		if s.Quality != drivers.Bad || s.Err == nil {
			t.Errorf("tag %d after stop: %v %v", i, s.Quality, s.Err)
		}
	}
	if err := o.Start(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 15*time.Second, "reads good again", func() bool {
		return d.Read(ctx, out) == nil && out[0].Quality == drivers.Good && out[1].Value == "PCB-4711"
	})
}

func TestRestartSubscribe(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	tags := []Tag{{Name: "z1", Node: o.NodeID("Zone1.Temperature")}, {Name: "bp", BrowsePath: "Oven01/Zone2/Temperature"}}
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags, Timeout: time.Second, ConnectTimeout: 2 * time.Second})
	r := subscribe(t, d)
	up := func() bool { n, err := r.lastState(); return n > 0 && err == nil }
	testkit.WaitFor(t, 30*time.Second, "device up", up)
	o.Stop()
	testkit.WaitFor(t, 15*time.Second, "device down", func() bool { _, err := r.lastState(); return err != nil })
	for i := range tags {
		if s, _ := r.sample(i); s.Quality != drivers.Bad || s.Err == nil {
			t.Errorf("tag %d while down: %v %v", i, s.Quality, s.Err)
		}
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 20*time.Second, "device up again", up)
	testkit.WaitFor(t, 30*time.Second, "good values again", func() bool {
		a, _ := r.sample(0)
		b, _ := r.sample(1)
		return a.Quality == drivers.Good && b.Quality == drivers.Good
	})
}

// TestStatusChange: a sensor that fails and recovers marks only its tag.
func TestStatusChange(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	tags := []Tag{{Name: "z1", Node: o.NodeID("Zone1.Temperature")}, {Name: "hum", Node: o.NodeID("Humidity")}}
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags})
	r := subscribe(t, d)
	testkit.WaitFor(t, 30*time.Second, "humidity uncertain", func() bool { s, _ := r.sample(1); return s.Quality == drivers.Uncertain })
	o.SetStatus("Humidity", ua.StatusBadCommunicationError)
	testkit.WaitFor(t, 30*time.Second, "humidity bad", func() bool {
		s, _ := r.sample(1)
		return s.Quality == drivers.Bad && s.Err != nil && strings.Contains(s.Err.Error(), "BadCommunicationError")
	})
	if s, _ := r.sample(0); s.Quality != drivers.Good {
		t.Errorf("z1: %v %v, want good", s.Quality, s.Err)
	}
	o.SetStatus("Humidity", ua.StatusOK)
	testkit.WaitFor(t, 30*time.Second, "humidity good", func() bool { s, _ := r.sample(1); return s.Quality == drivers.Good && s.Value == 41.5 })
}

func TestUnreachable(t *testing.T) {
	d := newDriver(t, Config{Endpoint: "opc.tcp://127.0.0.1:1", Tags: []Tag{{Name: "a", Node: "ns=1;s=x"}}, ConnectTimeout: time.Second})
	out := make([]drivers.Sample, 1)
	err := d.Read(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), "oven01: opc.tcp://127.0.0.1:1") {
		t.Fatalf("err %v, want one naming the device and endpoint", err)
	}
	// Within the backoff the next Read fails at once with the same error.
	start := time.Now()
	if err2 := d.Read(context.Background(), out); !errors.Is(err2, err) && err2.Error() != err.Error() {
		t.Errorf("second read: %v", err2)
	}
	if time.Since(start) > 500*time.Millisecond {
		t.Error("second read dialled again inside the backoff")
	}
	if out[0].Quality != drivers.Bad {
		t.Errorf("sample %v", out[0])
	}
}

func TestNewErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no endpoint", Config{PKIDir: "x"}, "no endpoint"},
		{"bad policy", Config{Endpoint: "opc.tcp://x:1", PKIDir: "x", SecurityPolicy: "Basic512"}, "unknown security policy"},
		{"mismatch", Config{Endpoint: "opc.tcp://x:1", PKIDir: "x", SecurityPolicy: "Basic256Sha256", SecurityMode: "None"}, "do not go together"},
		{"bad node", Config{Endpoint: "opc.tcp://x:1", PKIDir: "x", Tags: []Tag{{Name: "a", Node: "ns=x;q=1"}}}, "tag a: node"},
		{"both", Config{Endpoint: "opc.tcp://x:1", PKIDir: "x", Tags: []Tag{{Name: "a", Node: "i=1", BrowsePath: "A"}}}, "exclusive"},
		{"empty path", Config{Endpoint: "opc.tcp://x:1", PKIDir: "x", Tags: []Tag{{Name: "a", BrowsePath: "Objects/"}}}, "names no node"},
		{"cert no key", Config{Endpoint: "opc.tcp://x:1", PKIDir: "x", UserCertFile: "c"}, "go together"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("err %v, want %q", err, c.want)
			}
		})
	}
}

func TestParsePath(t *testing.T) {
	got, err := parsePath("Objects/Line1/2:Press01/Temperature")
	want := []pathElem{{-1, "Line1"}, {2, "Press01"}, {-1, "Temperature"}}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %v %v", got, err)
	}
}

// TestNetworkCut: bytes stop flowing but no connection closes; the
// watchdog finds out, the device goes down, and comes back after the cut.
func TestNetworkCut(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	tags := []Tag{{Name: "z1", Node: o.NodeID("Zone1.Temperature")}}
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags, Timeout: 500 * time.Millisecond, ConnectTimeout: time.Second})
	r := subscribe(t, d)
	up := func() bool { n, err := r.lastState(); return n > 0 && err == nil }
	testkit.WaitFor(t, 30*time.Second, "device up", up)
	o.Cut(true)
	testkit.WaitFor(t, 20*time.Second, "device down", func() bool { _, err := r.lastState(); return err != nil })
	if s, _ := r.sample(0); s.Quality != drivers.Bad {
		t.Errorf("z1 while cut: %v", s.Quality)
	}
	o.Cut(false)
	testkit.WaitFor(t, 20*time.Second, "device up again", up)
}

// TestReresolve: the PLC comes back with new node ids (a program
// download): browse-path tags answer BadNodeIdUnknown once and are
// resolved again; a tag by node id stays bad, naming the status.
func TestReresolve(t *testing.T) {
	for _, mode := range []string{"poll", "subscribe"} {
		t.Run(mode, func(t *testing.T) {
			o := startOven(t, sim.OvenOptions{})
			tags := []Tag{{Name: "bp", BrowsePath: "Oven01/Zone1/Temperature"}, {Name: "id", Node: o.NodeID("Recipe")}}
			d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags, Timeout: time.Second, ConnectTimeout: 2 * time.Second})
			ctx := context.Background()
			out := make([]drivers.Sample, len(tags))
			var get func(i int) drivers.Sample
			if mode == "poll" {
				get = func(i int) drivers.Sample { _ = d.Read(ctx, out); return out[i] }
			} else {
				r := subscribe(t, d)
				get = func(i int) drivers.Sample { s, _ := r.sample(i); return s }
			}
			testkit.WaitFor(t, 30*time.Second, "good values", func() bool { return get(0).Quality == drivers.Good && get(1).Quality == drivers.Good })
			o.Stop()
			testkit.WaitFor(t, 20*time.Second, "bad values", func() bool { return get(0).Quality == drivers.Bad })
			o.Renumber("v2.")
			if err := o.Start(ctx); err != nil {
				t.Fatal(err)
			}
			// Good again means resolved again: the old node id is unknown now.
			testkit.WaitFor(t, 20*time.Second, "the browse path resolved to the new node", func() bool { return get(0).Quality == drivers.Good })
			testkit.WaitFor(t, 30*time.Second, "the node id tag bad", func() bool {
				s := get(1)
				return s.Quality == drivers.Bad && s.Err != nil && strings.Contains(s.Err.Error(), "BadNodeIdUnknown")
			})
		})
	}
}

// TestSubscribePanicIsDeviceDown: a panic on the subscription's path (here
// in the first delivery) takes the device down with the error and the
// driver reconnects; it does not end the process.
func TestSubscribePanicIsDeviceDown(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: typeTags(o)[:2]})
	r := newRecorder()
	var once sync.Once
	deliver := func(cs []drivers.Change) {
		for _, c := range cs {
			if c.Sample.Quality == drivers.Good {
				once.Do(func() { panic("boom") })
			}
		}
		r.deliver(cs)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Subscribe(ctx, deliver, r.state) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Subscribe: %v", err)
		}
	}()
	testkit.WaitFor(t, 30*time.Second, "the device down with the panic, then up again", func() bool {
		states := r.allStates()
		for k, err := range states {
			if err != nil && strings.Contains(err.Error(), "internal error (panic: boom)") {
				return slices.Contains(states[k+1:], nil)
			}
		}
		return false
	})
	testkit.WaitFor(t, 30*time.Second, "good samples again", func() bool { s, ok := r.sample(0); return ok && s.Quality == drivers.Good })
}

func TestReadPanicIsDeviceError(t *testing.T) {
	o := startOven(t, sim.OvenOptions{})
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: typeTags(o)[:2]})
	// A nil node id where one was resolved: what a driver bug would leave.
	d.ids = nil
	out := make([]drivers.Sample, 2)
	err := d.Read(context.Background(), out)
	if err == nil || !strings.Contains(err.Error(), "internal error (panic") || out[0].Quality != drivers.Bad {
		t.Fatalf("read: %v, %+v", err, out)
	}
}

// TestPublishedSequence: keep-alives and data messages by sequence number
// (a session that never connected: a Republish fails as on a dead link).
func TestPublishedSequence(t *testing.T) {
	c, err := gopcua.NewClient("opc.tcp://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	value := func() []*ua.ExtensionObject {
		v, _ := ua.NewVariant(1.5)
		return []*ua.ExtensionObject{ua.NewExtensionObject(&ua.DataChangeNotification{MonitoredItems: []*ua.MonitoredItemNotification{
			{ClientHandle: 0, Value: &ua.DataValue{EncodingMask: ua.DataValueValue, Value: v}}}})}
	}
	for _, tc := range []struct {
		name         string
		subID, seq   uint32
		data         bool
		changes      int
		why, lost    bool
		next         uint32 // nextSeq after
		heardUpdated bool
	}{
		{"keep-alive, next number", 1, 5, false, 0, false, false, 5, true},
		{"keep-alive, last number", 1, 4, false, 0, false, false, 5, true},
		{"keep-alive after a lost message", 1, 7, false, 0, false, true, 5, true},
		{"data in order", 1, 5, true, 1, false, false, 6, true},
		{"data numbered afresh", 1, 1, true, 1, false, false, 2, true},
		{"data after a large gap", 1, 5 + maxRepublish + 1, true, 0, true, false, 5, true},
		{"another subscription's", 2, 9, true, 0, false, false, 5, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := newDriver(t, Config{Endpoint: "opc.tcp://127.0.0.1:1", Tags: []Tag{{Name: "a", Node: "ns=1;i=1"}}})
			sub := &subscription{id: 1, keepAlive: time.Second, nextSeq: 5, items: []item{{id: 1}}}
			msg := &ua.NotificationMessage{SequenceNumber: tc.seq}
			if tc.data {
				msg.NotificationData = value()
			}
			at := time.Now()
			changes, why, err := d.published(context.Background(), &session{c: c}, sub,
				published{res: &ua.PublishResponse{SubscriptionID: tc.subID, NotificationMessage: msg}, at: at})
			if len(changes) != tc.changes || (why != nil) != tc.why || (err != nil) != tc.lost || sub.nextSeq != tc.next || sub.heard.Equal(at) != tc.heardUpdated {
				t.Errorf("%d changes, why %v, err %v, next %d, heard %v", len(changes), why, err, sub.nextSeq, sub.heard.Equal(at))
			}
		})
	}
}
