package peers

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// These tests check the harness itself. ./... does not reach testdata, so
// run them by hand: LINEGATE_INTEROP=1 go test -race ./testdata/peers/

func mosquittoPub(t *testing.T, m *Mosquitto, args ...string) {
	t.Helper()
	out, err := exec.Command("mosquitto_pub", append([]string{"-h", "127.0.0.1", "-p", itoa(m.Port)}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_pub %q: %v: %s", args, err, out)
	}
}

// mosquittoSubOne returns the first message on topic.
func mosquittoSubOne(t *testing.T, m *Mosquitto, args ...string) string {
	t.Helper()
	out, err := exec.Command("mosquitto_sub", append([]string{"-h", "127.0.0.1", "-p", itoa(m.Port), "-C", "1", "-W", "5"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("mosquitto_sub %q: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func itoa(i int) string { return strconv.Itoa(i) }

func TestMosquittoRetainedSurvivesRestartWithPersistence(t *testing.T) {
	Interop(t)
	m := StartMosquitto(t, MosquittoOptions{Persistence: true})
	if !strings.HasPrefix(m.URL, "tcp://127.0.0.1:") || m.Port == 1883 {
		t.Fatalf("URL %s", m.URL)
	}
	mosquittoPub(t, m, "-t", "peers/test", "-r", "-m", "hello")
	if got := mosquittoSubOne(t, m, "-t", "peers/test"); got != "hello" {
		t.Fatalf("got %q", got)
	}
	m.Stop()
	if m.Running() || dialable(m.Addr) {
		t.Fatal("broker still up after Stop")
	}
	m.Start()
	if got := mosquittoSubOne(t, m, "-t", "peers/test"); got != "hello" {
		t.Fatalf("after restart got %q, want the persisted retained message", got)
	}
	m.Kill()
	testkit.WaitFor(t, 5*time.Second, "port closed after Kill", func() bool { return !dialable(m.Addr) })
}

func TestMosquittoExtraListenerWithPassword(t *testing.T) {
	Interop(t)
	dir := t.TempDir()
	pw := dir + "/passwd"
	if out, err := exec.Command("mosquitto_passwd", "-c", "-b", pw, "user", "secret").CombinedOutput(); err != nil {
		t.Fatalf("mosquitto_passwd: %v: %s", err, out)
	}
	port2 := testkit.FreePort(t)
	m := StartMosquitto(t, MosquittoOptions{
		GlobalConfig: "per_listener_settings true",
		ExtraConfig:  "listener " + itoa(port2) + " 127.0.0.1\nallow_anonymous false\npassword_file " + pw,
	})
	testkit.WaitFor(t, 5*time.Second, "second listener", func() bool { return dialable(hostPort(port2)) })
	args := []string{"-h", "127.0.0.1", "-p", itoa(port2), "-t", "x", "-m", "y"}
	if err := exec.Command("mosquitto_pub", args...).Run(); err == nil {
		t.Fatal("anonymous publish on the password listener succeeded")
	}
	if out, err := exec.Command("mosquitto_pub", append(args, "-u", "user", "-P", "secret")...).CombinedOutput(); err != nil {
		t.Fatalf("publish with password: %v: %s\n%s", err, out, m.Log())
	}
	mosquittoPub(t, m, "-t", "x", "-m", "anonymous ok on the plain listener")
}

func TestPymodbusServesSpecAndRestarts(t *testing.T) {
	Interop(t)
	s := StartPymodbus(t, PymodbusSpec{Units: map[byte]UnitSpec{
		1: {Holding: map[uint16]uint16{0: 0x1234, 5: 0xFFFF}, Coils: map[uint16]bool{2: true}},
		9: {Input: map[uint16]uint16{3: 42}, Size: 4},
	}})
	check := func() {
		t.Helper()
		got, err := Mbpoll(t, s.Addr, "-a", "1", "-r", "1", "-c", "6", "-t", "4:hex")
		if err != nil {
			t.Fatal(err)
		}
		if got[1] != "0x1234" || got[6] != "0xFFFF" || got[2] != "0x0000" {
			t.Fatalf("holding: %v", got)
		}
		got, err = Mbpoll(t, s.Addr, "-a", "1", "-r", "1", "-c", "4", "-t", "0")
		if err != nil || got[3] != "1" || got[1] != "0" {
			t.Fatalf("coils: %v %v", got, err)
		}
		got, err = Mbpoll(t, s.Addr, "-a", "9", "-r", "4", "-t", "3")
		if err != nil || got[4] != "42" {
			t.Fatalf("input: %v %v", got, err)
		}
		// Unit 9 serves 0..3 only; unit 1 serves 0..5+DefaultPad.
		if _, err := Mbpoll(t, s.Addr, "-a", "9", "-r", "4", "-c", "2", "-t", "3"); err == nil || !strings.Contains(err.Error(), "Illegal data address") {
			t.Fatalf("read past unit 9's range: %v", err)
		}
		if _, err := Mbpoll(t, s.Addr, "-a", "1", "-r", itoa(6+DefaultPad), "-t", "4"); err != nil {
			t.Fatalf("last served address: %v", err)
		}
		if _, err := Mbpoll(t, s.Addr, "-a", "1", "-r", itoa(7+DefaultPad), "-t", "4"); err == nil {
			t.Fatal("first address past the range answered")
		}
		if _, err := Mbpoll(t, s.Addr, "-a", "2", "-t", "4"); err == nil || !strings.Contains(err.Error(), "timed out") {
			t.Fatalf("unknown unit: %v", err)
		}
	}
	check()
	addr := s.Addr
	s.Stop()
	if dialable(addr) {
		t.Fatal("still listening after Stop")
	}
	s.Start()
	if s.Addr != addr {
		t.Fatalf("restarted on %s, want %s", s.Addr, addr)
	}
	check()
	if log := s.Log(); strings.Contains(log, "has been canceled") {
		t.Errorf("spurious disconnect error not filtered:\n%s", log)
	}
}
