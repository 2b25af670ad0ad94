package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/linegate/linegate/configs"
)

// selfAuthorized are the routes that check the token themselves: the status
// page (page.go), which a browser reaches with the token once in its
// address and then a cookie. Any other route, present or future, needs the
// token here: a new route is closed until it is opened on purpose.
func selfAuthorized(path string) bool {
	return path == "/" || path == "/status/live" || strings.HasPrefix(path, "/assets/")
}

// requireToken lets a request through only with "Authorization: Bearer
// <token>", except /healthz (a liveness probe learns nothing from "ok") and
// the self-authorized routes. An empty token lets everything through
// (loopback only: see checkHTTPExposure).
func requireToken(token string, next http.Handler) http.Handler {
	if token == "" {
		return next
	}
	// Comparing digests keeps the time taken independent of where the
	// first differing byte is and of the token's length.
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || selfAuthorized(r.URL.Path) {
			next.ServeHTTP(w, r)
			return
		}
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="linegate"`)
			http.Error(w, "unauthorized: send Authorization: Bearer <http.token>", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkHTTPExposure refuses a listener that other machines can reach when
// no token protects it. The config loader refuses it already; this also
// covers a host name that resolved to a non-loopback address.
func checkHTTPExposure(ln net.Listener, token string) error {
	if token != "" || configs.IsLoopback(ln.Addr().String()) {
		return nil
	}
	return fmt.Errorf("http.listen %s is reachable from other machines: set http.token or http.token_file, or listen on 127.0.0.1", ln.Addr())
}
