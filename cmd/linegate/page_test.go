package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/linegate/linegate/cmd/internal/agent"
	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers/sim"
	"github.com/linegate/linegate/testdata/peers"
)

const pageTestToken = "page-test-token-0123456789"

// chromium finds the browser: the test skips without it, except under
// LINEGATE_INTEROP=1 (CI), where a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv(peers.InteropEnv) == "1" {
		t.Fatalf("chromium not found (install the Debian package chromium; .ci/run does)")
	}
	t.Skip("chromium not found: the status page test needs it (apt-get install chromium)")
	return ""
}

// pageDemo runs what `linegate demo` runs (simulated presses and oven,
// embedded broker, the demo config) with the HTTP endpoint on a free port
// and pageTestToken, and returns the press line, to stop it, and the
// page's address.
func pageDemo(t *testing.T) (*sim.PressLine, string) {
	t.Helper()
	ctx := context.Background()
	discard := slog.New(slog.DiscardHandler)
	line := sim.NewPressLine(sim.Options{Addr: "127.0.0.1:0", Units: []byte{1, 2}, Logger: discard})
	if err := line.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { line.Stop() })
	oven := sim.NewOven(sim.OvenOptions{Addr: "127.0.0.1:0", Logger: discard})
	if err := oven.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(oven.Stop)
	broker, err := startBroker("127.0.0.1:0", discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { broker.Close() })

	text, err := configs.Example("demo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"DEMO_MODBUS": line.Addr(),
		"DEMO_OPCUA":  strings.TrimPrefix(oven.Endpoint(), "opc.tcp://"),
		"DEMO_BROKER": broker.addr,
		"DEMO_BUFFER": filepath.Join(t.TempDir(), "buffer.db"),
	}
	cfg, err := configs.Parse("demo.yaml", text, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	cfg.HTTP.Listen = &addr
	cfg.HTTP.Token = configs.Secret(pageTestToken)
	a, err := agent.New(cfg, discard, agent.Options{Version: version})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("pipeline: %v", err)
			}
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
	return line, "http://" + addr + "/"
}

// browser starts headless chromium with a fresh profile; what it reports
// (script exceptions, chromedp errors) is kept for the failure message.
func browser(t *testing.T, path string) (context.Context, *pageLog) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1366, 768),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	log := &pageLog{}
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(log.addf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("browser log:\n%s", log.String())
		}
	})
	// Listen starts the browser; its first run must not carry a timeout
	// (that would stop the browser with it), and a start that hangs is
	// bounded by the test's own timeout.
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil {
				text += " " + d.Exception.Description
			}
			log.exception(fmt.Sprintf("%s:%d: %s", d.URL, d.LineNumber+1, text))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var parts []string
				for _, a := range ev.Args {
					parts = append(parts, string(a.Value)+a.Description)
				}
				log.exception("console.error: " + strings.Join(parts, " "))
			}
		}
	})
	if err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return ctx, log
}

type pageLog struct {
	mu         sync.Mutex
	buf        bytes.Buffer
	exceptions []string
}

func (l *pageLog) addf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, format+"\n", args...)
}

func (l *pageLog) exception(s string) {
	l.addf("exception: %s", s)
	l.mu.Lock()
	l.exceptions = append(l.exceptions, s)
	l.mu.Unlock()
}

func (l *pageLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *pageLog) Exceptions() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.exceptions...)
}

// evalBool runs a script expression in the page; an error (page still
// loading) counts as false.
func evalBool(ctx context.Context, expr string) bool {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ok, err := chromedp.Run(cctx, chromedp.Evaluate[bool](expr))
	return err == nil && ok
}

func evalString(t *testing.T, ctx context.Context, expr string) string {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(cctx, chromedp.Evaluate[string](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return s
}

// screenshot saves the page's viewport as PNG into the test's artifact
// directory (kept with go test -artifacts) and returns it.
func screenshot(t *testing.T, ctx context.Context, name string) []byte {
	t.Helper()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	png, err := chromedp.Run(cctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
	return png
}

const (
	pressRow    = `document.querySelector('#devices li[data-device="press01"]')`
	ovenRow     = `document.querySelector('#devices li[data-device="oven01"]')`
	tempValue   = `document.querySelector('#tags tr[data-key="press01/temperature"] .v')`
	tempQuality = `document.querySelector('#tags tr[data-key="press01/temperature"] .q')`
	trendPoints = `Array.from(document.querySelectorAll('#chart polyline')).reduce((n, p) => n + p.points.numberOfItems, 0)`
	noOverflow  = `document.documentElement.scrollWidth <= window.innerWidth`
)

// TestPageInChromium opens the status page of the demo pipeline in headless
// Chromium: it shows the devices, a value that changes, a trend, and a
// device marked down when its simulator stops. With -update it also writes
// the README's screenshot, testdata/status-page.png.
func TestPageInChromium(t *testing.T) {
	path := chromium(t)
	line, url := pageDemo(t)
	ctx, log := browser(t, path)

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := chromedp.Do(cctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// waitPage polls a script condition under a deadline; on a timeout it
	// shows what the page said.
	waitPage := func(what string, timeout time.Duration, expr string) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !evalBool(ctx, expr) {
			if time.Now().After(deadline) {
				cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				text, err := chromedp.Run(cctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
				cancel()
				t.Fatalf("timed out after %v waiting for %s; the page shows (%v):\n%.3000s", timeout, what, err, text)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// The HMI screen. Without the token, nothing but how to get in.
	run("open the page", chromedp.EmulateViewport(1366, 768), chromedp.Navigate(url))
	waitPage("a token refusal", 10*time.Second, `document.body.innerText.includes("needs the agent's http token") && !document.getElementById("devices")`)
	// With it once in the address, the page is in, and the address is clean.
	run("open the page with the token", chromedp.Navigate(url+"?token="+pageTestToken))
	waitPage("the token off the address bar", 10*time.Second, `location.search === "" && location.pathname === "/"`)
	waitPage("press01 shown up", 15*time.Second, pressRow+`?.dataset.up === "true" && `+pressRow+`.querySelector(".state").textContent === "UP"`)
	waitPage("oven01 shown up", 15*time.Second, ovenRow+`?.dataset.up === "true"`)
	waitPage("a temperature value", 10*time.Second, tempValue+`?.textContent !== undefined && /^-?[0-9]/.test(`+tempValue+`.textContent)`)
	first := evalString(t, ctx, tempValue+`.textContent`)
	waitPage("the temperature to change from "+first, 15*time.Second, tempValue+`.textContent !== `+jsString(first)+` && /^-?[0-9]/.test(`+tempValue+`.textContent)`)
	if q := evalString(t, ctx, tempQuality+`.textContent`); q != "good" {
		t.Fatalf("press01/temperature quality %q, want good", q)
	}
	// The first numeric tag is charted from the start: a line of points
	// (for the README's screenshot, a longer one).
	points, wait := 3, 15*time.Second
	if testkit.Updating() {
		points, wait = 30, 60*time.Second
	}
	waitPage("a trend of press01/temperature", wait,
		`document.getElementById("chart-title").textContent.startsWith("press01/temperature") && `+trendPoints+` >= `+fmt.Sprint(points))
	if !evalBool(ctx, noOverflow) {
		t.Error("the page is wider than a 1366x768 screen")
	}
	png := screenshot(t, ctx, "status-page-1366x768.png")
	if testkit.Updating() {
		if err := os.WriteFile(filepath.Join("testdata", "status-page.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Another tag, chosen by a click, is charted and kept in the address.
	run("click press01/speed", chromedp.Click(chromedp.CSS(`#tags tr[data-key="press01/speed"]`)))
	waitPage("press01/speed charted", 10*time.Second,
		`document.getElementById("chart-title").textContent.startsWith("press01/speed") && location.hash === "#chart=press01/speed"`)

	// A phone.
	run("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	waitPage("the phone layout in one column", 10*time.Second,
		`getComputedStyle(document.querySelector("main")).gridTemplateColumns.split(" ").length === 1`)
	if !evalBool(ctx, noOverflow) {
		t.Error("the page scrolls sideways on a phone")
	}
	screenshot(t, ctx, "status-page-phone.png")
	run("back to the HMI screen", chromedp.EmulateViewport(1366, 768))

	// The presses' simulator stops: both presses go down, the oven stays up.
	if err := line.Stop(); err != nil {
		t.Fatal(err)
	}
	waitPage("press01 marked down", 20*time.Second, pressRow+`.dataset.up === "false" && `+pressRow+`.querySelector(".state").textContent === "DOWN"`)
	if errText := evalString(t, ctx, pressRow+`.querySelector(".err").textContent`); errText == "" {
		t.Error("press01 is down without an error shown")
	}
	waitPage("press01/temperature bad", 10*time.Second, tempQuality+`.textContent === "bad"`)
	if !evalBool(ctx, ovenRow+`.dataset.up === "true"`) {
		t.Error("oven01 went down with the presses' simulator")
	}
	if got := evalString(t, ctx, `document.getElementById("overall").textContent`); !strings.Contains(got, "down") {
		t.Errorf("header says %q with two devices down", got)
	}
	screenshot(t, ctx, "status-page-down.png")

	if ex := log.Exceptions(); len(ex) > 0 {
		t.Fatalf("script errors on the page: %v", ex)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
