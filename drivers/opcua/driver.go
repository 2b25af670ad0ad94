package opcua

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

// Driver reads (poll mode) or subscribes to (subscribe mode) the tags of
// one OPC UA server. Read, Subscribe and Close are called from one
// goroutine, the collector's.
type Driver struct {
	cfg  Config
	tags []tagRef
	log  *slog.Logger

	pki *PKI
	own *Own

	// ids are the resolved node ids per tag (nil: browse path not resolved
	// yet, or invalidated by BadNodeIdUnknown); resolveErr says why.
	ids        []*ua.NodeID
	resolveErr []error
	resolveAt  time.Time // earliest next resolution attempt of failed paths

	mu   sync.Mutex // guards sess against Close from another goroutine
	sess *session

	// poll mode's reconnect gate
	bo       backoff
	nextDial time.Time
	lastErr  error

	// learnedRead and learnedMon are the chunk sizes the server accepted
	// after answering BadTooManyOperations (0: none learned); they outlive
	// the session.
	learnedRead, learnedMon int

	// Counters, for diagnostics and the soak tests.
	sessions    atomic.Uint64 // sessions created
	keepAlives  atomic.Uint64 // keep-alive Publish responses
	dataChanges atomic.Uint64 // data-change notifications (monitored item values)
	recreated   atomic.Uint64 // subscriptions re-created in a live session
}

var (
	_ drivers.Driver     = (*Driver)(nil)
	_ drivers.Subscriber = (*Driver)(nil)
)

// New checks the config; it does not connect.
func New(cfg Config) (*Driver, error) {
	refs, err := cfg.check()
	if err != nil {
		return nil, fmt.Errorf("opcua %s: %w", cfg.Device, err)
	}
	d := &Driver{cfg: cfg, tags: refs, log: cfg.Logger,
		ids: make([]*ua.NodeID, len(refs)), resolveErr: make([]error, len(refs))}
	for i, t := range refs {
		d.ids[i] = t.id
	}
	return d, nil
}

// Close ends the session; the next Read connects again.
func (d *Driver) Close() error {
	d.mu.Lock()
	s := d.sess
	d.sess = nil
	d.mu.Unlock()
	if s != nil {
		s.close()
	}
	return nil
}

func (d *Driver) setSession(s *session) {
	d.mu.Lock()
	d.sess = s
	d.mu.Unlock()
}

// drop closes the current session after a fault.
func (d *Driver) drop() { _ = d.Close() }

// errf prefixes the device name.
func (d *Driver) errf(err error) error {
	if d.cfg.Device == "" {
		return err
	}
	return fmt.Errorf("%s: %w", d.cfg.Device, err)
}

// newSession forgets what the last session resolved: browse paths and
// namespace URIs are names, and a PLC restarted after a program download
// gives them other node ids and namespace indices. Keeping the old ids
// would read another node's value as this tag's, good. nsu= nodes are
// looked up at once in the namespace array gopcua read on connecting.
func (d *Driver) newSession(s *session) {
	d.resolveAt = time.Time{}
	ns := s.c.Namespaces()
	for i, t := range d.tags {
		switch {
		case t.path != nil:
			d.ids[i], d.resolveErr[i] = nil, nil
		case t.nsu != "":
			d.ids[i], d.resolveErr[i] = nil, nil
			k := slices.Index(ns, t.nsu)
			if k < 0 {
				d.resolveErr[i] = fmt.Errorf("node %s: namespace %q is not in the server's namespace array", t.Node, t.nsu)
				d.log.Warn("opcua: namespace not found", "device", d.cfg.Device, "tag", t.Name, "uri", t.nsu)
				continue
			}
			id, err := ua.ParseNodeID(fmt.Sprintf("ns=%d;%s", k, t.local))
			if err != nil {
				d.resolveErr[i] = fmt.Errorf("node %s: %w", t.Node, err)
				continue
			}
			d.ids[i] = id
		}
	}
}

// resolve resolves the browse paths that have no node id yet, at most
// every retryNodes once one failed, with one browse cache per pass.
func (d *Driver) resolve(ctx context.Context, s *session) {
	now := time.Now()
	if now.Before(d.resolveAt) {
		return
	}
	b := &browser{c: s.c, cache: map[string][]Ref{}, timeout: func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(ctx, d.cfg.Timeout)
	}}
	failed := false
	for i, t := range d.tags {
		if t.path == nil || d.ids[i] != nil {
			continue
		}
		id, err := b.resolve(ctx, t.path)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failed = true
			d.resolveErr[i] = fmt.Errorf("browse_path %s: %w", t.BrowsePath, err)
			d.log.Warn("opcua: browse path not resolved", "device", d.cfg.Device, "tag", t.Name, "err", err)
			continue
		}
		d.ids[i], d.resolveErr[i] = id, nil
		d.log.Debug("opcua: browse path resolved", "device", d.cfg.Device, "tag", t.Name, "node", id.String())
	}
	if failed {
		d.resolveAt = now.Add(retryNodes)
	}
}

// invalidate forgets a browse path's node id after the server answered
// BadNodeIdUnknown (a PLC program download renumbers nodes), so the next
// pass resolves it again.
func (d *Driver) invalidate(i int, status ua.StatusCode) bool {
	if status != ua.StatusBadNodeIDUnknown || d.tags[i].path == nil || d.ids[i] == nil {
		return false
	}
	d.ids[i] = nil
	d.resolveErr[i] = fmt.Errorf("browse_path %s: %w (resolving again)", d.tags[i].BrowsePath, StatusError{status})
	d.resolveAt = time.Time{}
	return true
}

// unresolved is the sample of a tag without a node id.
func (d *Driver) unresolved(i int) drivers.Sample {
	err := d.resolveErr[i]
	if err == nil {
		err = errors.New("browse_path not resolved yet")
	}
	return drivers.Sample{Quality: drivers.Bad, Err: err}
}

func badAll(out []drivers.Sample, err error) {
	for i := range out {
		out[i] = drivers.Sample{Quality: drivers.Bad, Err: err}
	}
}

// nodeErr names the node in a tag's error.
func nodeErr(id *ua.NodeID, err error) error { return fmt.Errorf("%s: %w", id, err) }
