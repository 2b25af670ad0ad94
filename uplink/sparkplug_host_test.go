package uplink

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSparkplugParseState(t *testing.T) {
	tests := []struct {
		payload string
		online  bool
		ts      int64
		err     string
	}{
		{`{"online":true,"timestamp":1700000000000}`, true, 1700000000000, ""},
		{`{"online":false,"timestamp":5}`, false, 5, ""},
		{`{"timestamp":5,"online":true,"extra":1}`, true, 5, ""},
		{`{"online":true}`, false, 0, "want"},
		{`{"timestamp":5}`, false, 0, "want"},
		{`{"online":true,"timestamp":-1}`, false, 0, "timestamp"},
		{`{"online":true,"timestamp":1.5}`, false, 0, "timestamp"},
		{`ONLINE`, false, 0, "not JSON"}, // Sparkplug 2.2's STATE
		{``, false, 0, "not JSON"},
	}
	for _, tt := range tests {
		online, ts, err := parseState([]byte(tt.payload))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: error %v, want %q", tt.payload, err, tt.err)
			}
			continue
		}
		if err != nil || online != tt.online || ts != tt.ts {
			t.Errorf("%q: %v %d %v; want %v %d", tt.payload, online, ts, err, tt.online, tt.ts)
		}
	}
}

func TestSparkplugBdSeqFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "buffer.db.sparkplug-bdseq")
	tests := []struct {
		content string // "" = no file
		next    uint64
		err     bool
	}{
		{"", 0, false},
		{"0\n", 1, false},
		{"41\n", 42, false},
		{"255\n", 0, false}, // mod 256
		{"256\n", 0, true},
		{"garbage", 0, true},
	}
	for _, tt := range tests {
		os.Remove(path)
		if tt.content != "" {
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		next, err := loadBdSeq(path)
		if next != tt.next || (err != nil) != tt.err {
			t.Errorf("file %q: next %d, %v; want %d, error %v", tt.content, next, err, tt.next, tt.err)
		}
	}
	if err := saveBdSeq(path, 7); err != nil {
		t.Fatal(err)
	}
	if next, err := loadBdSeq(path); next != 8 || err != nil {
		t.Errorf("after save 7: next %d, %v", next, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if err := saveBdSeq(filepath.Join(dir, "missing", "f"), 1); err == nil {
		t.Error("save into a missing directory did not fail")
	}
}

// TestSparkplugBdSeqAcrossRestarts: three runs, each with a reconnect;
// the wills' and NBIRTHs' bdSeq rise by one per CONNECT, wrapping at 256.
func TestSparkplugBdSeqAcrossRestarts(t *testing.T) {
	b := startBroker(t, "127.0.0.1:0")
	host := subscribe(t, b.url(), spFilter)
	path := filepath.Join(t.TempDir(), "bdseq")
	if err := os.WriteFile(path, []byte("253\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := spConfig(b.url())
	cfg.BdSeqFile = path
	cfg.Devices = spTestDevices
	want := []uint64{254, 255, 0, 1, 2, 3}
	for run := range 3 {
		r := startUplink(t, cfg, newMemSource())
		spHostCount(t, host, "NBIRTH", 2*run+1)
		b.kick(testClientID)
		spHostCount(t, host, "NBIRTH", 2*run+2)
		r.stop(t)
	}
	var got []uint64
	for _, m := range spReceived(t, host) {
		if m.typ == "NBIRTH" {
			bd, _ := bdSeqOf(m.p)
			got = append(got, bd)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("NBIRTH bdSeqs %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("NBIRTH bdSeqs %v, want %v", got, want)
		}
	}
}

func TestSparkplugBrokerOrder(t *testing.T) {
	cfg := spConfig("tcp://a:1", "tcp://b:1", "tcp://c:1")
	u, err := New(cfg, newMemSource())
	if err != nil {
		t.Fatal(err)
	}
	order := func() string {
		var s []string
		for _, b := range u.brokerOrder() {
			s = append(s, b.Host[:1])
		}
		return strings.Join(s, "")
	}
	for _, tt := range []struct{ from, want string }{{"", "abc"}, {"tcp://a:1", "bca"}, {"tcp://c:1", "abc"}, {"tcp://b:1", "cab"}} {
		if tt.from != "" {
			u.walk(&session{broker: tt.from})
		}
		if got := order(); got != tt.want {
			t.Errorf("after walking from %q: %s, want %s", tt.from, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
