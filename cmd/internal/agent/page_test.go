package agent

import (
	"github.com/linegate/linegate/internal/testkit"

	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/configs"
)

const pageTestToken = "page-test-token-0123456789"

const pageConfig = `gateway: {id: page-gw, site: plant-a, area: assembly, line: line1}
buffer: {path: %s}
uplink: {brokers: ["tcp://127.0.0.1:%d"]}
http: {listen: "%s"%s}
devices:
  - name: press01
    driver: modbus
    address: tcp://127.0.0.1:%d
    tags:
      - {name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}
`

// startPageServer serves the agent's HTTP endpoints for a pipeline that
// does not run: enough for the routes and the token rule.
func startPageServer(t *testing.T, token string) string {
	t.Helper()
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	tok := ""
	if token != "" {
		tok = fmt.Sprintf(", token: %q", token)
	}
	text := fmt.Sprintf(pageConfig, filepath.Join(dir, "buffer.db"), testkit.FreePort(t), addr, tok, testkit.FreePort(t))
	cfg, err := configs.Parse("page.yaml", []byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, slog.New(slog.DiscardHandler), Options{Version: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.queue.Close() })
	srv, err := a.startHTTP(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return "http://" + addr
}

// TestPageRoutes checks what the page serves and to whom: GET only, and
// with a token set, nothing without it.
func TestPageRoutes(t *testing.T) {
	noRedirect := &http.Client{
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	open := startPageServer(t, "")
	locked := startPageServer(t, pageTestToken)
	cookie := "linegate_page=" + pageKey(pageTestToken)
	tests := []struct {
		name, method, base, path string
		header                   [2]string // name, value
		code                     int
		contains                 string // in the body, or in a header for a redirect
	}{
		{"page", "GET", open, "/", [2]string{}, 200, `<script src="/assets/app.js"`},
		{"script", "GET", open, "/assets/app.js", [2]string{}, 200, "/status/live"},
		{"style", "GET", open, "/assets/style.css", [2]string{}, 200, "@media"},
		{"live", "GET", open, "/status/live?device=press01&tag=temperature", [2]string{}, 200, `"history":{"device":"press01","tag":"temperature","points":[]}`},
		{"status still there", "GET", open, "/status", [2]string{}, 200, `"gateway": "page-gw"`},
		{"unknown path", "GET", open, "/nope", [2]string{}, 404, ""},
		{"no asset listing", "GET", open, "/assets/", [2]string{}, 404, ""},
		{"unknown asset", "GET", open, "/assets/nope.js", [2]string{}, 404, ""},
		{"post page", "POST", open, "/", [2]string{}, 405, ""},
		{"put live", "PUT", open, "/status/live", [2]string{}, 405, ""},
		{"delete asset", "DELETE", open, "/assets/app.js", [2]string{}, 405, ""},

		{"locked page", "GET", locked, "/", [2]string{}, 401, "/?token="},
		{"locked asset", "GET", locked, "/assets/app.js", [2]string{}, 401, ""},
		{"locked live", "GET", locked, "/status/live", [2]string{}, 401, ""},
		{"wrong token", "GET", locked, "/?token=guess", [2]string{}, 401, ""},
		{"token sets cookie", "GET", locked, "/?token=" + pageTestToken, [2]string{}, 303, "linegate_page=" + pageKey(pageTestToken)},
		{"cookie page", "GET", locked, "/", [2]string{"Cookie", cookie}, 200, "<title>"},
		{"cookie asset", "GET", locked, "/assets/app.js", [2]string{"Cookie", cookie}, 200, "fetch("},
		{"cookie live", "GET", locked, "/status/live", [2]string{"Cookie", cookie}, 200, `"gateway":"page-gw"`},
		{"bad cookie", "GET", locked, "/status/live", [2]string{"Cookie", "linegate_page=" + pageTestToken}, 401, ""},
		{"bearer live", "GET", locked, "/status/live", [2]string{"Authorization", "Bearer " + pageTestToken}, 200, `"tags":[`},
		{"wrong bearer", "GET", locked, "/", [2]string{"Authorization", "Bearer guess"}, 401, ""},
		// The cookie opens the page only; the rest keeps the bearer rule.
		{"cookie status", "GET", locked, "/status", [2]string{"Cookie", cookie}, 401, ""},
		{"cookie metrics", "GET", locked, "/metrics", [2]string{"Cookie", cookie}, 401, ""},
		{"bearer status", "GET", locked, "/status", [2]string{"Authorization", "Bearer " + pageTestToken}, 200, `"gateway": "page-gw"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.header[0] != "" {
				req.Header.Set(tc.header[0], tc.header[1])
			}
			resp, err := noRedirect.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code {
				t.Fatalf("%s %s: %s, want %d: %s", tc.method, tc.path, resp.Status, tc.code, body)
			}
			got := string(body)
			if tc.code == http.StatusSeeOther {
				if loc := resp.Header.Get("Location"); loc != "/" {
					t.Fatalf("redirect to %q, want / (the token off the address bar)", loc)
				}
				got = resp.Header.Get("Set-Cookie")
				if strings.Contains(got, pageTestToken) || !strings.Contains(got, "HttpOnly") || !strings.Contains(got, "SameSite=Strict") {
					t.Fatalf("cookie %q: must be HttpOnly, SameSite=Strict and not hold the token", got)
				}
			}
			if !strings.Contains(got, tc.contains) {
				t.Fatalf("%s %s: %q not in\n%.600s", tc.method, tc.path, tc.contains, got)
			}
			if tc.code == 200 && !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") && tc.path != "/status" {
				t.Fatalf("no content security policy on %s", tc.path)
			}
		})
	}
}
