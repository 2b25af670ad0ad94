package opcua

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"

	"github.com/linegate/linegate/drivers"
)

// watchdogEvery is how often a subscribed session proves it is alive by
// reading the server state: a cut cable leaves the TCP connection open and
// the publish loop silent, and only a request with a deadline finds out.
const watchdogEvery = 5 * time.Second

// Subscribe runs the device in subscribe mode until ctx is done: it
// connects, creates one subscription with a monitored item per tag, and
// delivers the changes of each publish. On any fault it delivers every tag
// bad, reports the device down, and connects again with backoff
// (1s doubling to 30s), recreating the session and the subscription.
func (d *Driver) Subscribe(ctx context.Context, deliver func([]drivers.Change), state func(error)) error {
	var bo backoff
	var down error // the error last reported, nil while up
	report := func(err error) {
		if down != nil && down.Error() == err.Error() {
			return
		}
		down = err
		changes := make([]drivers.Change, len(d.tags))
		for i := range changes {
			changes[i] = drivers.Change{Index: i, Sample: drivers.Sample{Quality: drivers.Bad, Err: err}}
		}
		deliver(changes)
		state(err)
	}
	for {
		s, err := d.dial(ctx)
		if ctx.Err() != nil {
			if s != nil {
				s.close()
			}
			return nil
		}
		if err == nil {
			d.setSession(s)
			err = d.run(ctx, s, deliver, func() {
				bo.reset()
				down = nil
				state(nil)
			})
			d.drop()
			if ctx.Err() != nil {
				return nil
			}
		}
		err = d.errf(err)
		d.log.Debug("opcua: subscription down", "device", d.cfg.Device, "err", err)
		report(err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(bo.next()):
		}
	}
}

// item is a tag's monitored item.
type item struct {
	id     uint32 // MonitoredItemID, 0 = none
	failed bool   // refused or unresolved: retried every retryNodes
}

// run serves one session until it fails (returns why) or ctx is done.
func (d *Driver) run(ctx context.Context, s *session, deliver func([]drivers.Change), up func()) error {
	notifs := make(chan *opcua.PublishNotificationData, 64)
	keepAlive := max(3, uint32((10*time.Second)/d.cfg.Interval))
	sub, err := s.c.Subscribe(ctx, &opcua.SubscriptionParameters{
		Interval:          d.cfg.Interval,
		MaxKeepAliveCount: keepAlive,
		LifetimeCount:     keepAlive * 10,
	}, notifs)
	if err != nil {
		return fmt.Errorf("create subscription: %w", describe(err))
	}
	items := make([]item, len(d.tags))
	d.resolve(ctx, s)
	all := make([]int, len(d.tags))
	for i := range all {
		all[i] = i
	}
	changes, err := d.monitor(ctx, s, sub, items, all, true)
	if err != nil {
		return err
	}
	up()
	if len(changes) > 0 {
		deliver(changes)
	}

	watchdog := time.NewTicker(watchdogEvery)
	defer watchdog.Stop()
	retry := time.NewTicker(retryNodes)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.dead:
			return errors.New("connection lost")
		case <-watchdog.C:
			if err := d.alive(ctx, s); err != nil {
				return err
			}
		case <-retry.C:
			var again []int
			for i, it := range items {
				if it.failed {
					again = append(again, i)
				}
			}
			if len(again) == 0 {
				continue
			}
			d.resolve(ctx, s)
			changes, err := d.monitor(ctx, s, sub, items, again, true)
			if err != nil {
				return err
			}
			if len(changes) > 0 {
				deliver(changes)
			}
		case n := <-notifs:
			changes, err := d.notification(ctx, sub, items, n)
			if err != nil {
				return err
			}
			if len(changes) > 0 {
				deliver(changes)
			}
		}
	}
}

// alive reads the server state with a deadline.
func (d *Driver) alive(ctx context.Context, s *session) error {
	rctx, cancel := context.WithTimeout(ctx, max(d.cfg.Timeout, 2*time.Second))
	defer cancel()
	res, err := s.c.Read(rctx, &ua.ReadRequest{NodesToRead: []*ua.ReadValueID{
		{NodeID: ua.NewNumericNodeID(0, id.Server_ServerStatus_State), AttributeID: ua.AttributeIDValue},
	}, TimestampsToReturn: ua.TimestampsToReturnNeither})
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("server not answering: %w", describe(err))
	}
	if len(res.Results) == 1 && res.Results[0] != nil && res.Results[0].Value != nil {
		if st, ok := res.Results[0].Value.Value().(int32); ok && ua.ServerState(st) != ua.ServerStateRunning {
			return fmt.Errorf("server state is %s", ua.ServerState(st))
		}
	}
	return nil
}

// monitor creates the monitored items of the tags idx, in chunks of the
// server's MaxMonitoredItemsPerCall (halved while the server answers
// BadTooManyOperations). Tags the server refuses, or without a node id,
// get a bad change and are retried later. A service failure is returned.
//
// A browse path whose node came back BadNodeIdUnknown (a PLC program
// download renumbered it) is resolved again and monitored once more at
// once, when again is true.
func (d *Driver) monitor(ctx context.Context, s *session, sub *opcua.Subscription, items []item, idx []int, again bool) ([]drivers.Change, error) {
	var changes []drivers.Change
	var moved []int
	var todo []int
	for _, i := range idx {
		if d.ids[i] == nil {
			items[i] = item{failed: true}
			changes = append(changes, drivers.Change{Index: i, Sample: d.unresolved(i)})
			continue
		}
		todo = append(todo, i)
	}
	for len(todo) > 0 {
		n := min(len(todo), s.maxMon)
		chunk := todo[:n]
		reqs := make([]*ua.MonitoredItemCreateRequest, n)
		for k, i := range chunk {
			reqs[k] = d.itemRequest(i)
		}
		rctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
		res, err := sub.Monitor(rctx, ua.TimestampsToReturnBoth, reqs...)
		cancel()
		if err == nil && res.ResponseHeader != nil && res.ResponseHeader.ServiceResult != ua.StatusOK {
			err = res.ResponseHeader.ServiceResult
		}
		var sc ua.StatusCode
		if errors.As(err, &sc) && sc == ua.StatusBadTooManyOperations && n > 1 {
			s.maxMon = max(1, n/2)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create monitored items: %w", describe(err))
		}
		if len(res.Results) != n {
			return nil, fmt.Errorf("create monitored items: %d results for %d items", len(res.Results), n)
		}
		for k, i := range chunk {
			r := res.Results[k]
			if r == nil || quality(r.StatusCode) == drivers.Bad {
				st := ua.StatusBadUnexpectedError
				if r != nil {
					st = r.StatusCode
				}
				items[i] = item{failed: true}
				err := nodeErr(d.ids[i], StatusError{st})
				if d.invalidate(i, st) && again {
					moved = append(moved, i)
					continue
				}
				changes = append(changes, drivers.Change{Index: i, Sample: drivers.Sample{Quality: drivers.Bad, Err: err}})
				d.log.Warn("opcua: monitored item refused", "device", d.cfg.Device, "tag", d.tags[i].Name, "err", err)
				continue
			}
			items[i] = item{id: r.MonitoredItemID}
		}
		todo = todo[n:]
	}
	if len(moved) > 0 {
		d.resolve(ctx, s)
		more, err := d.monitor(ctx, s, sub, items, moved, false)
		if err != nil {
			return nil, err
		}
		changes = append(changes, more...)
	}
	return changes, nil
}

func (d *Driver) itemRequest(i int) *ua.MonitoredItemCreateRequest {
	req := opcua.NewMonitoredItemCreateRequestWithDefaults(d.ids[i], ua.AttributeIDValue, uint32(i))
	req.RequestedParameters.SamplingInterval = float64(d.cfg.SamplingInterval) / float64(time.Millisecond)
	req.RequestedParameters.QueueSize = d.cfg.QueueSize
	if db := d.tags[i].Deadband; db > 0 {
		req.RequestedParameters.Filter = ua.NewExtensionObject(&ua.DataChangeFilter{
			Trigger:       ua.DataChangeTriggerStatusValue,
			DeadbandType:  uint32(ua.DeadbandTypeAbsolute),
			DeadbandValue: db,
		})
	}
	return req
}

// notification turns one publish into changes. A subscription-level error
// ends the session (the caller recreates it).
func (d *Driver) notification(ctx context.Context, sub *opcua.Subscription, items []item, n *opcua.PublishNotificationData) ([]drivers.Change, error) {
	if n == nil {
		return nil, nil
	}
	if n.Error != nil {
		return nil, fmt.Errorf("subscription: %w", describe(n.Error))
	}
	switch v := n.Value.(type) {
	case *ua.StatusChangeNotification:
		if quality(v.Status) == drivers.Bad {
			return nil, fmt.Errorf("subscription: %w", StatusError{v.Status})
		}
	case *ua.DataChangeNotification:
		changes := make([]drivers.Change, 0, len(v.MonitoredItems))
		var gone []uint32
		for _, mi := range v.MonitoredItems {
			if mi == nil || int(mi.ClientHandle) >= len(d.tags) || items[mi.ClientHandle].failed {
				continue
			}
			i := int(mi.ClientHandle)
			smp := sample(mi.Value)
			if smp.Err != nil && d.ids[i] != nil {
				smp.Err = nodeErr(d.ids[i], smp.Err)
			}
			if mi.Value != nil && d.invalidate(i, mi.Value.Status) {
				// The node is gone from under its browse path: drop the
				// item; the retry resolves the path and monitors it again.
				gone = append(gone, items[i].id)
				items[i] = item{failed: true}
			}
			changes = append(changes, drivers.Change{Index: i, Sample: smp})
		}
		if len(gone) > 0 {
			rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
			_, _ = sub.Unmonitor(rctx, gone...)
			cancel()
		}
		return changes, nil
	}
	return nil, nil
}
