package main

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
func startHTTP(addr string, p *pipeline) (*http.Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		// Ready: the buffer is open (Stats works) and the uplink is either
		// connected or buffering within the cap.
		st := p.queue.Stats()
		up := p.up.Status()
		if !up.Connected && st.FileSize >= int64(p.cfg.Buffer.MaxSize) {
			http.Error(w, "uplink down and buffer full", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(p.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(p.status())
	})
	pageRoutes(mux, p) // the status page: /, /assets/, /status/live (page.go)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", addr, err)
	}
	token := p.cfg.HTTP.Token.Reveal()
	if err := checkHTTPExposure(ln, token); err != nil {
		ln.Close()
		return nil, err
	}
	srv := &http.Server{Handler: requireToken(token, mux), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("http server stopped", "err", err)
		}
	}()
	p.log.Info("http listening", "addr", ln.Addr().String())
	return srv, nil
}

type statusDoc struct {
	Gateway string         `json:"gateway"`
	Version string         `json:"version"`
	Devices []deviceStatus `json:"devices"`
	Buffer  bufferStatus   `json:"buffer"`
	Uplink  uplinkStatus   `json:"uplink"`
	// ModbusLinks: the load of each serial port and TCP address the
	// Modbus devices use, over the last minute.
	ModbusLinks []modbusLinkStatus `json:"modbus_links,omitempty"`
}

type modbusLinkStatus struct {
	Link string `json:"link"`
	// Utilisation is the share of the time the line (the connections, on
	// average) was held by a poll or request: 1 is a saturated bus.
	Utilisation float64            `json:"utilisation"`
	Devices     []modbusRateStatus `json:"devices"`
}

type modbusRateStatus struct {
	Name           string  `json:"name"`
	Unit           int     `json:"unit"`
	PollsPerSecond float64 `json:"polls_per_second"`
}

type deviceStatus struct {
	Name         string     `json:"name"`
	Up           bool       `json:"up"`
	LastError    string     `json:"last_error,omitempty"`
	LastGoodRead *time.Time `json:"last_good_read,omitempty"`
	LastPoll     *time.Time `json:"last_poll,omitempty"`
	Polls        uint64     `json:"polls"`
	Overruns     uint64     `json:"overruns"`
}

type bufferStatus struct {
	Path      string `json:"path"`
	Messages  int64  `json:"messages"`
	FileBytes int64  `json:"file_bytes"`
	MaxBytes  int64  `json:"max_bytes"`
	OldestSeq uint64 `json:"oldest_seq"`
	NextSeq   uint64 `json:"next_seq"`
	Dropped   uint64 `json:"dropped"`
	// OldestCreated is when the oldest waiting message was made: how far
	// behind the MES is.
	OldestCreated *time.Time `json:"oldest_created,omitempty"`
	Events        int        `json:"events"`
}

type uplinkStatus struct {
	Connected   bool       `json:"connected"`
	Broker      string     `json:"broker,omitempty"`
	Inflight    int        `json:"inflight"`
	Published   uint64     `json:"published"`
	Reconnects  uint64     `json:"reconnects"`
	LastPublish *time.Time `json:"last_publish,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (p *pipeline) status() statusDoc {
	doc := statusDoc{Gateway: p.cfg.Gateway.ID, Version: version}
	for _, d := range p.col.Status() {
		doc.Devices = append(doc.Devices, deviceStatus{
			Name: d.Name, Up: d.Up, LastError: d.LastError, LastGoodRead: optTime(d.LastGoodRead), LastPoll: optTime(d.LastPoll),
			Polls: d.Polls, Overruns: d.Overruns,
		})
	}
	bs := p.queue.Stats()
	doc.Buffer = bufferStatus{
		Path: p.cfg.Buffer.Path, Messages: int64(bs.Messages), FileBytes: bs.FileSize, MaxBytes: int64(p.cfg.Buffer.MaxSize),
		OldestSeq: bs.OldestSeq, NextSeq: bs.NextSeq, Dropped: bs.Dropped,
		OldestCreated: optTime(bs.OldestCreated), Events: bs.Events,
	}
	if p.devs != nil && p.devs.pool != nil {
		for _, ls := range p.devs.pool.Stats() {
			st := modbusLinkStatus{Link: ls.Link, Utilisation: ls.Utilisation}
			for _, d := range ls.Devices {
				st.Devices = append(st.Devices, modbusRateStatus{Name: d.Device, Unit: int(d.Unit), PollsPerSecond: d.PollsPerSecond})
			}
			doc.ModbusLinks = append(doc.ModbusLinks, st)
		}
	}
	us := p.up.Status()
	doc.Uplink = uplinkStatus{
		Connected: us.Connected, Broker: us.Broker, Inflight: us.Inflight, Published: us.Published,
		Reconnects: us.Reconnects, LastPublish: optTime(us.LastPublish), LastError: us.LastError,
	}
	return doc
}
