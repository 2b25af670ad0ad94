package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/internal/testkit"
)

const pageCmdConfig = `gateway: {id: page-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s, commit_interval: 20ms}
uplink: {brokers: [tcp://%s], commands: true}
devices:
  - name: press01
    driver: modbus
    address: tcp://%s
    poll_interval: 200ms
    commands: true
    tags:
      - {name: setpoint, class: process, register: holding, address: 70, type: uint16, writable: true, write_range: [0, 100]}
      - {name: temperature, class: process, register: holding, address: 0, type: float32}
`

// TestPageShowsCommands: the status page's Commands card lists the
// commands from the MES, newest first, with their result and reason.
func TestPageShowsCommands(t *testing.T) {
	path := chromium(t)
	discard := slog.New(slog.DiscardHandler)
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}, Logger: discard})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	broker, err := startBroker("127.0.0.1:0", discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	text := fmt.Sprintf(pageCmdConfig, filepath.Join(t.TempDir(), "buffer.db"), broker.addr, line.Addr())
	cfg, err := configs.Parse("page.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	cfg.HTTP.Listen = &addr
	a, err := agent.New(cfg, discard, agent.Options{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	testkit.WaitFor(t, 15*time.Second, "agent connected, press01 up", func() bool {
		st := a.Status()
		return st.Uplink.Connected && len(st.Devices) == 1 && st.Devices[0].Up
	})

	mes := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + broker.addr).SetClientID("mes-page").SetAutoReconnect(false))
	if tok := mes.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("mes connect: %v", tok.Error())
	}
	t.Cleanup(func() { mes.Disconnect(100) })
	expires := time.Now().Add(time.Minute).UTC().Format(time.RFC3339)
	for i, c := range []string{
		`{"schema":"linegate/v1","id":"page-1","tag":"setpoint","value":42,"expires":"` + expires + `"}`,
		`{"schema":"linegate/v1","id":"page-2","tag":"temperature","value":1,"expires":"` + expires + `"}`,
	} {
		if tok := mes.Publish("linegate/plant-a/assembly/line1/press01/cmd", 1, false, c); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("publish: %v", tok.Error())
		}
		// One after the other: the order of the rows is that of the results.
		testkit.WaitFor(t, 15*time.Second, fmt.Sprintf("%d command(s) in /status", i+1), func() bool {
			return len(a.Status().Devices[0].Commands) == i+1
		})
	}

	ctx, log := browser(t, path)
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(cctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	rows := `Array.from(document.querySelectorAll('#commands tbody tr')).map((tr) => tr.innerText).join("\n")`
	deadline := time.Now().Add(15 * time.Second)
	for !evalBool(ctx, `!document.getElementById("commands-card").hidden && document.querySelectorAll('#commands tbody tr').length === 2`) {
		if time.Now().After(deadline) {
			t.Fatalf("the Commands card did not show two rows: %q", evalString(t, ctx, rows))
		}
		time.Sleep(100 * time.Millisecond)
	}
	got := evalString(t, ctx, rows)
	first, second, _ := strings.Cut(got, "\n")
	if !strings.Contains(first, "page-2") || !strings.Contains(first, "REJECTED") || !strings.Contains(first, "not writable") {
		t.Errorf("newest row %q, want page-2 rejected as not writable", first)
	}
	if !strings.Contains(second, "page-1") || !strings.Contains(second, "press01/setpoint") || !strings.Contains(second, "OK") {
		t.Errorf("older row %q, want page-1 ok", second)
	}
	if !evalBool(ctx, noOverflow) {
		t.Error("the page is wider than a 1366x768 screen with the Commands card")
	}
	screenshot(t, ctx, "status-page-commands.png")
	if ex := log.Exceptions(); len(ex) > 0 {
		t.Fatalf("script errors on the page: %v", ex)
	}
}
