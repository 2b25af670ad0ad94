package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/internal/testkit"
)

// walkthroughCommands are the commands of the README's "From a tag list to
// a running line", in order.
func walkthroughCommands(t *testing.T) [][]string {
	t.Helper()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## From a tag list to a running line\n")
	if !ok {
		t.Fatal("README has no section \"From a tag list to a running line\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var cmds [][]string
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if f[0] != "linegate" {
			t.Fatalf("a step that is not a linegate command: %s", line)
		}
		cmds = append(cmds, f[1:])
	}
	if len(cmds) < 5 {
		t.Fatalf("%d commands in the walk-through", len(cmds))
	}
	return cmds
}

// TestWalkthrough runs the README's walk-through: init → import → check →
// check --connect → run, against the simulated press line and an embedded
// broker standing in for mes-broker, and waits for the imported tags to
// reach the MES with good quality and the right value (a wrong word order
// would be a wrong value marked good).
func TestWalkthrough(t *testing.T) {
	cmds := walkthroughCommands(t)
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	line.Freeze(true)
	line.Set(1, "holding", 0, 0x41BC, 0x0000) // 23.5 as float32 ABCD
	broker, err := startBroker("127.0.0.1:0", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	mes := subscribe(t, "tcp://"+broker.addr, "linegate/#")

	sample, err := filepath.Abs("../internal/tagimport/testdata/kepware.csv")
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	replace := strings.NewReplacer("tcp://mes-broker:1883", "tcp://"+broker.addr, "127.0.0.1:5020", line.Addr(),
		"cmd/internal/tagimport/testdata/kepware.csv", sample)
	ran := 0
	for _, c := range cmds {
		args := strings.Fields(replace.Replace(strings.Join(c, " ")))
		switch args[0] {
		case "sim": // started above, on a free port
			continue
		case "run":
			startRun(t, args[len(args)-1])
			ran++
			continue
		}
		code, out, errOut := run(t, args...)
		if code != exitOK {
			t.Fatalf("linegate %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
		}
		ran++
	}
	if ran < 5 {
		t.Fatalf("ran %d commands", ran)
	}
	testkit.WaitFor(t, 20*time.Second, "press01's imported tags at the MES", func() bool {
		for _, m := range mes.all() {
			if !strings.HasSuffix(m.topic, "/press01/process") {
				continue
			}
			var p struct {
				Readings []struct {
					Tag, Quality string
					Value        float64
				}
			}
			if json.Unmarshal(m.payload, &p) == nil && len(p.Readings) > 0 && p.Readings[0].Tag == "temperature" && p.Readings[0].Quality == "good" {
				if p.Readings[0].Value != 23.5 {
					t.Fatalf("temperature %v, want 23.5: %s", p.Readings[0].Value, m.payload)
				}
				return true
			}
		}
		return false
	})
}
