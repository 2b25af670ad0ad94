package agent

import (
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"time"
)

// web holds the status page: plain HTML, CSS and JavaScript, no build step
// and nothing fetched from elsewhere, so that it works on a line PC cut off
// from the internet.
//
//go:embed web
var web embed.FS

// pageCookie carries the page's access from the first request, which had
// the token in its query, to the ones the browser makes by itself (assets,
// the poll of /status/live), which cannot send an Authorization header.
const pageCookie = "linegate_page"

// pageRoutes adds the read-only status page to mux: / (the page), /assets/
// (its script and style) and /status/live (what the page polls every
// second). Every route is GET: nothing on the page can write to a device.
//
// With an http token set, each route needs it like /metrics and /status:
// as "Authorization: Bearer <token>", or, for a browser, once in the
// address (/?token=...), which sets a cookie and redirects to a clean /.
func (a *Agent) pageRoutes(mux *http.ServeMux) {
	token := a.cfg.HTTP.Token.Reveal()
	assets, _ := fs.Sub(web, "web/assets") // cannot fail: the path is embedded
	files := http.StripPrefix("/assets/", http.FileServerFS(assets))

	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		if q := r.URL.Query().Get("token"); q != "" && token != "" {
			if !sameSecret(q, token) {
				pageDenied(w)
				return
			}
			http.SetCookie(w, &http.Cookie{
				Name: pageCookie, Value: pageKey(token), Path: "/",
				HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
			})
			// Off the address bar, so that a look over the shoulder or a
			// copied link does not carry the token.
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		if !pageAllowed(r, token) {
			pageDenied(w)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		http.ServeFileFS(w, r, web, "web/index.html")
	})
	mux.HandleFunc("GET /assets/", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		if !pageAllowed(r, token) {
			pageDenied(w)
			return
		}
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		// Revalidate each time: an upgraded binary serves new assets.
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /status/live", func(w http.ResponseWriter, r *http.Request) {
		pageHeaders(w)
		if !pageAllowed(r, token) {
			pageDenied(w)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(a.live(r.URL.Query().Get("device"), r.URL.Query().Get("tag")))
	})
}

// pageHeaders keep the page to its own origin: no scripts or styles from
// elsewhere, no framing, and no Referer that could carry a token away.
func pageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
}

// pageAllowed tells whether r may see the page: always without a token,
// else with the bearer token or the cookie the token set.
func pageAllowed(r *http.Request, token string) bool {
	if token == "" {
		return true
	}
	if bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && sameSecret(bearer, token) {
		return true
	}
	c, err := r.Cookie(pageCookie)
	return err == nil && sameSecret(c.Value, pageKey(token))
}

// pageKey is what the cookie holds: derived from the token rather than the
// token itself, whose characters need not be valid in a cookie.
func pageKey(token string) string {
	sum := sha256.Sum256([]byte("linegate status page\x00" + token))
	return hex.EncodeToString(sum[:])
}

// sameSecret compares in constant time, so that response times do not
// tell how much of a guess was right.
func sameSecret(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func pageDenied(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="linegate"`)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusUnauthorized)
	_, _ = w.Write([]byte("linegate: this page needs the agent's http token (http.token or http.token_file).\n" +
		"Open /?token=<token> in the browser once, or send \"Authorization: Bearer <token>\".\n"))
}

// liveDoc is what the page polls: the /status document, the latest
// reading of every tag and the recent history of the tag it charts.
type liveDoc struct {
	// Now is the gateway's clock: the page measures ages against it, not
	// against the clock of the laptop it runs on.
	Now     time.Time    `json:"now"`
	Status  Status       `json:"status"`
	Tags    []tagLive    `json:"tags"`
	History *historyLive `json:"history,omitempty"`
}

type tagLive struct {
	Device  string     `json:"device"`
	Tag     string     `json:"tag"`
	Class   string     `json:"class,omitempty"`
	Unit    string     `json:"unit,omitempty"`
	Value   any        `json:"value"`
	Quality string     `json:"quality,omitempty"` // "" before the first read
	Error   string     `json:"error,omitempty"`
	TS      *time.Time `json:"ts,omitempty"`
}

type historyLive struct {
	Device string `json:"device"`
	Tag    string `json:"tag"`
	// Points are [unix milliseconds, value], oldest first: compact for a
	// poll every second.
	Points [][2]float64 `json:"points"`
}

// live builds the page's document; device and tag ("" for none) choose the
// charted tag.
func (a *Agent) live(device, tag string) liveDoc {
	doc := liveDoc{Now: time.Now().UTC(), Status: a.Status()}
	for _, t := range a.col.Live() {
		doc.Tags = append(doc.Tags, tagLive{
			Device: t.Device, Tag: t.Tag, Class: t.Class, Unit: t.Unit,
			Value: t.Value, Quality: t.Quality, Error: t.Error, TS: optTime(t.TS),
		})
	}
	if device != "" && tag != "" {
		h := &historyLive{Device: device, Tag: tag, Points: [][2]float64{}}
		for _, pt := range a.col.History(device, tag) {
			h.Points = append(h.Points, [2]float64{float64(pt.TS.UnixMilli()), pt.Value})
		}
		doc.History = h
	}
	return doc
}
