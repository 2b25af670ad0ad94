package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// startHTTP serves /healthz, /readyz, /metrics, /status and the status page
// (/) on addr; with http.token set, all but /healthz need it (httpauth.go).
func (a *Agent) startHTTP(addr string) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		// Ready: the buffer is open (Stats works) and the uplink is either
		// connected or buffering within the cap.
		st := a.queue.Stats()
		up := a.up.Status()
		if !up.Connected && st.FileSize >= int64(a.cfg.Buffer.MaxSize) {
			http.Error(w, "uplink down and buffer full", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(a.Status())
	})
	a.pageRoutes(mux) // the status page: /, /assets/, /status/live (page.go)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	token := a.cfg.HTTP.Token.Reveal()
	if err := checkHTTPExposure(ln, token); err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: requireToken(token, mux), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("http server stopped", "err", err)
		}
	}()
	a.log.Info("http listening", "addr", ln.Addr().String())
	return srv, nil
}
