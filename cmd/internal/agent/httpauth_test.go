package agent

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRequireToken(t *testing.T) {
	const token = "tok-0123456789abcdef"
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "served") })
	tests := []struct {
		name, token, path, auth string
		want                    int
	}{
		{"no token configured", "", "/metrics", "", http.StatusOK},
		{"healthz stays open", token, "/healthz", "", http.StatusOK},
		{"metrics without token", token, "/metrics", "", http.StatusUnauthorized},
		{"status without token", token, "/status", "", http.StatusUnauthorized},
		{"readyz without token", token, "/readyz", "", http.StatusUnauthorized},
		{"unknown route without token", token, "/debug/pprof/", "", http.StatusUnauthorized},
		{"wrong token", token, "/metrics", "Bearer nope", http.StatusUnauthorized},
		{"token prefix", token, "/metrics", "Bearer " + token[:5], http.StatusUnauthorized},
		{"basic is not bearer", token, "/metrics", "Basic " + token, http.StatusUnauthorized},
		{"right token", token, "/metrics", "Bearer " + token, http.StatusOK},
		{"status page checks itself", token, "/", "", http.StatusOK},
		{"page assets check themselves", token, "/assets/app.js", "", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, tt.path, nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			requireToken(tt.token, ok).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Fatalf("%s: %d, want %d", tt.path, rec.Code, tt.want)
			}
			if tt.want == http.StatusUnauthorized && (rec.Header().Get("WWW-Authenticate") == "" || strings.Contains(rec.Body.String(), token)) {
				t.Errorf("401 without WWW-Authenticate or showing the token: %v %q", rec.Header(), rec.Body)
			}
		})
	}
}

type fakeListener struct {
	net.Listener
	addr net.Addr
}

func (f fakeListener) Addr() net.Addr { return f.addr }

func TestCheckHTTPExposure(t *testing.T) {
	for _, tt := range []struct {
		ip    string
		token string
		ok    bool
	}{
		{"127.0.0.1", "", true}, {"::1", "", true}, {"0.0.0.0", "", false}, {"10.0.0.7", "", false}, {"0.0.0.0", "t", true},
	} {
		ln := fakeListener{addr: &net.TCPAddr{IP: net.ParseIP(tt.ip), Port: 9870}}
		if err := checkHTTPExposure(ln, tt.token); (err == nil) != tt.ok {
			t.Errorf("%s token %q: %v", tt.ip, tt.token, err)
		}
	}
}
