package opcua

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

// Read reads every tag, in chunks of the server's MaxNodesPerRead. A node
// that fails marks only its own tag bad. A failed request drops the session;
// the next Read reconnects, no sooner than the backoff allows.
//
// A panic in the driver is the device's error, not the agent's end.
func (d *Driver) Read(ctx context.Context, out []drivers.Sample) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("opcua: driver panic", "device", d.cfg.Device, "panic", r, "stack", string(debug.Stack()))
			d.drop()
			err = d.errf(fmt.Errorf("internal error (panic: %v): reconnecting", r))
			d.lastErr, d.nextDial = err, time.Now().Add(d.bo.next())
			badAll(out, err)
		}
	}()
	if len(out) != len(d.tags) {
		return fmt.Errorf("%s: read: %d samples for %d tags", d.cfg.Device, len(out), len(d.tags))
	}
	s, err := d.ensure(ctx)
	if err != nil {
		badAll(out, err)
		return err
	}
	d.resolve(ctx, s)
	idx := make([]int, 0, len(d.tags))
	for i := range d.tags {
		if d.ids[i] == nil {
			out[i] = d.unresolved(i)
			continue
		}
		idx = append(idx, i)
	}
	for len(idx) > 0 {
		n := min(len(idx), s.maxRead)
		err := d.readChunk(ctx, s, idx[:n], out)
		var sc ua.StatusCode
		if errors.As(err, &sc) && sc == ua.StatusBadTooManyOperations && n > 1 {
			// The server's limit is lower than it said; remembered for
			// the next sessions.
			s.maxRead = max(1, n/2)
			d.learnedRead = s.maxRead
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			err = d.errf(fmt.Errorf("read: %w", describe(err)))
			if lost(err) {
				d.drop()
				d.lastErr, d.nextDial = err, time.Now().Add(d.bo.next())
			}
			// A service fault leaves the session: the server answered.
			badAll(out, err)
			return err
		}
		idx = idx[n:]
	}
	return nil
}

func (d *Driver) readChunk(ctx context.Context, s *session, idx []int, out []drivers.Sample) error {
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth, NodesToRead: make([]*ua.ReadValueID, len(idx))}
	for k, i := range idx {
		req.NodesToRead[k] = &ua.ReadValueID{NodeID: d.ids[i], AttributeID: ua.AttributeIDValue, DataEncoding: &ua.QualifiedName{}}
	}
	rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	res, err := s.c.Read(rctx, req)
	if err != nil {
		return err
	}
	if len(res.Results) != len(idx) {
		return fmt.Errorf("%d results for %d nodes", len(res.Results), len(idx))
	}
	now := time.Now()
	for k, i := range idx {
		smp := sample(res.Results[k])
		skewed(&smp, now, d.cfg.MaxClockSkew)
		if smp.Err != nil {
			smp.Err = nodeErr(d.ids[i], smp.Err)
		}
		if res.Results[k] != nil {
			d.invalidate(i, res.Results[k].Status)
		}
		out[i] = smp
	}
	return nil
}

// ensure returns the session, connecting when there is none and the
// backoff allows; within the backoff it returns the last error at once.
func (d *Driver) ensure(ctx context.Context) (*session, error) {
	d.mu.Lock()
	s := d.sess
	d.mu.Unlock()
	if s != nil {
		return s, nil
	}
	if time.Now().Before(d.nextDial) && d.lastErr != nil {
		return nil, d.lastErr
	}
	s, err := d.dial(ctx, d.cfg.ConnectTimeout)
	if err != nil {
		err = d.errf(err)
		d.lastErr, d.nextDial = err, time.Now().Add(d.bo.next())
		return nil, err
	}
	d.bo.reset()
	d.lastErr = nil
	d.setSession(s)
	d.newSession(s)
	return s, nil
}
