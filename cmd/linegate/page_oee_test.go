package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/collector"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/internal/testkit"
)

const oeePageConfig = `gateway: {id: oee-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s}
uplink: {brokers: ["tcp://%s"]}
http: {listen: "%s"}
devices:
  - name: press01
    driver: modbus
    address: tcp://%s
    poll_interval: 200ms
    oee:
      state_tag: state
      run: [running]
      unplanned_stop: [stopped, idle, fault]
      total_counter: strokes
      good_counter: good_parts
      ideal_cycle_time: 10ms
    tags:
      - {name: state, class: equipment, register: holding, address: 10, type: uint16, states: {0: stopped, 1: running, 2: idle, 3: fault}}
      - {name: good_parts, class: equipment, register: holding, address: 12, type: uint32, counter: true}
      - {name: strokes, class: equipment, register: holding, address: 120, type: uint32, counter: true}
`

// TestOEEPageInChromium opens the status page of a press with an oee:
// block in headless Chromium: the card shows the current shift's OEE and
// its three factors from the running pipeline (95 of 100 parts good:
// quality 95.0 %), and draws a bar per shift for a history of eight closed
// shifts and the current one.
func TestOEEPageInChromium(t *testing.T) {
	path := chromium(t)
	discard := slog.New(slog.DiscardHandler)
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1}, Logger: discard})
	if err := line.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	line.Freeze(true)
	line.Set(1, "holding", 10, 1)
	line.Set(1, "holding", 12, 0, 0)
	line.Set(1, "holding", 120, 0, 0)
	broker, err := startBroker("127.0.0.1:0", discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	text := fmt.Sprintf(oeePageConfig, filepath.Join(t.TempDir(), "buffer.db"), broker.addr, addr, line.Addr())
	cfg, err := configs.Parse("oee.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(cfg, discard, agent.Options{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Error("pipeline did not stop")
		}
	})
	testkit.WaitFor(t, 10*time.Second, "the agent's HTTP endpoint", func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	bctx, log := browser(t, path)
	waitPage := func(what string, timeout time.Duration, expr string) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !evalBool(bctx, expr) {
			if time.Now().After(deadline) {
				cctx, cancel := context.WithTimeout(bctx, 5*time.Second)
				text, err := chromedp.Run(cctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
				cancel()
				t.Fatalf("timed out after %v waiting for %s; the page shows (%v):\n%.3000s", timeout, what, err, text)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	cctx, cancel := context.WithTimeout(bctx, 15*time.Second)
	err = chromedp.Do(cctx, chromedp.EmulateViewport(1366, 768), chromedp.Navigate("http://"+addr+"/"))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	const dev = `document.querySelector('#oee-list .oee-dev[data-device="press01"]')`
	fig := func(f string) string { return dev + `?.querySelector('[data-f="` + f + `"]')?.textContent` }
	waitPage("the OEE card of press01", 15*time.Second, `!document.getElementById("oee").hidden && `+dev+` !== null`)
	// The counters' first reading carries no delta; these parts do.
	line.Set(1, "holding", 12, 0, 95)
	line.Set(1, "holding", 120, 0, 100)
	waitPage("quality 95.0 %", 15*time.Second, fig("quality")+` === "95.0 %"`)
	for _, f := range []string{"oee", "availability", "performance"} {
		if v := evalString(t, bctx, fig(f)); len(v) < 3 || v[len(v)-1] != '%' {
			t.Errorf("%s shows %q, want a percentage", f, v)
		}
	}
	if n := evalString(t, bctx, `String(`+dev+`.querySelectorAll("svg.oee-chart rect.bar").length)`); n != "1" {
		t.Errorf("%s bars for a gateway that has seen one shift, want 1", n)
	}

	// A history of eight closed shifts and the current one, in the shape
	// /status gives it, drawn by the page's own code.
	hist := collector.OEEStatus{Device: "press09"}
	start := time.Date(2026, 11, 25, 5, 0, 0, 0, time.UTC)
	for i := range 9 {
		v := 0.5 + float64(i)/20
		f := collector.OEEFigures{Shift: []string{"06:00", "14:00", "22:00"}[i%3], ShiftStart: start.Add(time.Duration(i) * 8 * time.Hour),
			Final: i < 8, Availability: &v, Performance: &v, Quality: &v, OEE: &v}
		if i == 4 {
			f.OEE, f.Uncertain = nil, "no parts in the shift yet"
		}
		if i < 8 {
			hist.Last = append(hist.Last, f)
		} else {
			hist.Current = f
		}
	}
	js, err := json.Marshal([]collector.OEEStatus{hist})
	if err != nil {
		t.Fatal(err)
	}
	const drawn = `(() => { const c = document.createElement("div"); c.id = "oee-test"; document.body.append(c);
		window.linegateOEE.render(%s, c); return c; })()`
	_ = evalString(t, bctx, `String(`+fmt.Sprintf(drawn, js)+`.childElementCount)`)
	if got := evalString(t, bctx, `String(document.querySelectorAll("#oee-test rect.bar").length) + " " +
		String(document.querySelectorAll("#oee-test rect.bar.current").length) + " " +
		String(document.querySelectorAll("#oee-test rect.bar.none").length) + " " +
		document.querySelector('#oee-test [data-f="oee"]').textContent`); got != "9 1 1 90.0 %" {
		t.Errorf("history chart: %q; want 9 bars, 1 current, 1 without OEE, current OEE 90.0 %%", got)
	}
	if !evalBool(bctx, noOverflow) {
		t.Error("the page is wider than a 1366x768 screen")
	}
	screenshot(t, bctx, "status-page-oee.png")
	if ex := log.Exceptions(); len(ex) > 0 {
		t.Fatalf("script errors on the page: %v", ex)
	}
}
