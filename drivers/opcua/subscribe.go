package opcua

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
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

// silentAfter is how many keep-alive periods a subscription may stay
// without any Publish response (data or keep-alive) before linegate takes
// it for dead and creates it again: a server sends a keep-alive every
// period, so 2.5 allows one late and one lost, and checking every quarter
// period finds it within 3.
const silentAfter = 2.5

// defaultKeepAlive is the keep-alive period linegate asks for.
const defaultKeepAlive = 10 * time.Second

// Subscribe runs the device in subscribe mode until ctx is done: it
// connects, creates one subscription with a monitored item per tag, and
// delivers the changes of each publish. When the session is lost it
// delivers every tag bad, reports the device down, and connects again with
// backoff (1s doubling to 30s), recreating the session and the
// subscription. A service fault of a live session does not end it (see
// run).
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
		s, err := d.dial(ctx, d.publishTimeout())
		if ctx.Err() != nil {
			if s != nil {
				s.close()
			}
			return nil
		}
		if err == nil {
			d.setSession(s)
			d.newSession(s)
			err = d.guard(func() error {
				return d.run(ctx, s, deliver, func() {
					bo.reset()
					down = nil
					state(nil)
				})
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

// guard runs f and turns a panic in it into an error: a fault in one
// device's driver takes that device down, not the agent.
func (d *Driver) guard(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			d.log.Error("opcua: driver panic", "device", d.cfg.Device, "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error (panic: %v): reconnecting", r)
		}
	}()
	return f()
}

// keepAliveCount is the MaxKeepAliveCount asked for: KeepAlive in
// publishing intervals.
func (d *Driver) keepAliveCount() uint32 {
	return max(3, uint32(d.cfg.KeepAlive/d.cfg.Interval))
}

// publishTimeout is a Publish request's timeout hint: longer than the
// keep-alive period, so that an idle Publish is answered with a keep-alive
// rather than timed out by the server, and shorter than the silence that
// takes the subscription for dead.
func (d *Driver) publishTimeout() time.Duration {
	ka := time.Duration(d.keepAliveCount()) * d.cfg.Interval
	return 2*ka + d.cfg.Timeout
}

// item is a tag's monitored item.
type item struct {
	id     uint32 // MonitoredItemID, 0 = none
	failed bool   // refused or unresolved: retried every retryNodes
}

// subscription is one subscription of the session and its items.
type subscription struct {
	id        uint32
	keepAlive time.Duration // revised publishing interval × keep-alive count
	heard     time.Time     // the last Publish response for it
	nextSeq   uint32        // sequence number of the next data message
	items     []item
}

// published is one Publish answer, or why there was none.
type published struct {
	res *ua.PublishResponse
	err error
	at  time.Time
}

// run serves one session until it is lost (returns why) or ctx is done.
//
// Publishing is linegate's own loop (publisher): gopcua's stops for good
// at the first service fault. What a live server answers is handled here,
// in the session: BadTimeout on an idle Publish is only sent again;
// BadNoSubscription, a bad StatusChangeNotification, a gap in the sequence
// numbers or a subscription silent for silentAfter keep-alive periods
// re-create the subscription (its tags bad with the reason in between);
// BadTooManyOperations halves the chunk. Only lost requests end the
// session.
func (d *Driver) run(ctx context.Context, s *session, deliver func([]drivers.Change), up func()) error {
	sub, changes, err := d.subscribe(ctx, s, nil)
	if err != nil {
		return err
	}
	up()
	if len(changes) > 0 {
		deliver(changes)
	}

	pctx, cancel := context.WithCancel(ctx)
	results := make(chan published)
	resume := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := d.guard(func() error { d.publisher(pctx, s, results, resume); return nil }); err != nil {
			select {
			case results <- published{err: err, at: time.Now()}:
			case <-pctx.Done():
			}
		}
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	// recreate replaces the subscription in this session, the tags bad
	// with why until the new one's initial values arrive.
	recreate := func(why error) error {
		d.recreated.Add(1)
		d.log.Warn("opcua: re-creating the subscription", "device", d.cfg.Device, "subscription", sub.id, "err", why)
		bad := make([]drivers.Change, len(d.tags))
		for i := range bad {
			bad[i] = drivers.Change{Index: i, Sample: drivers.Sample{Quality: drivers.Bad, Err: d.errf(why)}}
		}
		deliver(bad)
		next, changes, err := d.subscribe(ctx, s, sub)
		if err != nil {
			return err
		}
		sub = next
		if len(changes) > 0 {
			deliver(changes)
		}
		select {
		case resume <- struct{}{}:
		default:
		}
		return nil
	}

	watchdog := time.NewTicker(min(watchdogEvery, max(sub.keepAlive/4, 10*time.Millisecond)))
	defer watchdog.Stop()
	lastAlive := time.Now()
	retry := time.NewTicker(retryNodes)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-watchdog.C:
			if silent := now.Sub(sub.heard); silent > time.Duration(silentAfter*float64(sub.keepAlive)) {
				err := fmt.Errorf("subscription silent: no data or keep-alive for %.1f keep-alive periods of %v (re-created)", silentAfter, sub.keepAlive)
				if err := recreate(err); err != nil {
					return err
				}
				continue
			}
			if now.Sub(lastAlive) >= watchdogEvery {
				lastAlive = now
				if err := d.alive(ctx, s); err != nil {
					return err
				}
			}
		case <-retry.C:
			var again []int
			for i, it := range sub.items {
				if it.failed {
					again = append(again, i)
				}
			}
			if len(again) == 0 {
				continue
			}
			d.resolve(ctx, s)
			changes, err := d.monitor(ctx, s, sub, again, true)
			if err != nil {
				if lost(err) {
					return err
				}
				if err := recreate(err); err != nil {
					return err
				}
				continue
			}
			if len(changes) > 0 {
				deliver(changes)
			}
		case p := <-results:
			changes, why, err := d.published(ctx, s, sub, p)
			if err != nil {
				return err
			}
			if len(changes) > 0 {
				deliver(changes)
			}
			if why != nil {
				if err := recreate(why); err != nil {
					return err
				}
			}
		}
	}
}

// subscribe creates a subscription with an item per tag; old, if not nil,
// is deleted first (best effort: the server may have dropped it already).
// A failure to create the subscription is returned; the changes are the
// tags that could not be monitored.
func (d *Driver) subscribe(ctx context.Context, s *session, old *subscription) (*subscription, []drivers.Change, error) {
	if old != nil {
		rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		_ = s.c.Send(rctx, &ua.DeleteSubscriptionsRequest{SubscriptionIDs: []uint32{old.id}}, func(ua.Response) error { return nil })
		cancel()
	}
	ka := d.keepAliveCount()
	var res *ua.CreateSubscriptionResponse
	rctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
	err := s.c.Send(rctx, &ua.CreateSubscriptionRequest{
		RequestedPublishingInterval: float64(d.cfg.Interval) / float64(time.Millisecond),
		RequestedLifetimeCount:      ka * 10,
		RequestedMaxKeepAliveCount:  ka,
		PublishingEnabled:           true,
	}, func(v ua.Response) error { return assign(v, &res) })
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("create subscription: %w", describe(err))
	}
	interval := time.Duration(res.RevisedPublishingInterval * float64(time.Millisecond))
	if interval <= 0 {
		interval = d.cfg.Interval
	}
	count := res.RevisedMaxKeepAliveCount
	if count == 0 {
		count = ka
	}
	sub := &subscription{id: res.SubscriptionID, keepAlive: time.Duration(count) * interval,
		heard: time.Now(), nextSeq: 1, items: make([]item, len(d.tags))}
	d.resolve(ctx, s)
	all := make([]int, len(d.tags))
	for i := range all {
		all[i] = i
	}
	changes, err := d.monitor(ctx, s, sub, all, true)
	if err != nil {
		return nil, nil, err
	}
	d.log.Debug("opcua: subscribed", "device", d.cfg.Device, "subscription", sub.id, "interval", interval, "keep_alive", sub.keepAlive)
	return sub, changes, nil
}

// publisher keeps one Publish request outstanding and hands every answer
// to run, acknowledging each data message in the next request. After
// BadNoSubscription it waits for resume (run creates a new subscription);
// after another fault it waits a second, so a server that faults every
// request is not hammered.
func (d *Driver) publisher(ctx context.Context, s *session, out chan<- published, resume <-chan struct{}) {
	acks := []*ua.SubscriptionAcknowledgement{}
	pause := time.NewTimer(0)
	<-pause.C
	defer pause.Stop()
	for {
		var res *ua.PublishResponse
		err := s.c.Send(ctx, &ua.PublishRequest{SubscriptionAcknowledgements: acks}, func(v ua.Response) error { return assign(v, &res) })
		if ctx.Err() != nil {
			return
		}
		acks = []*ua.SubscriptionAcknowledgement{}
		if err == nil && res.NotificationMessage != nil && len(res.NotificationMessage.NotificationData) > 0 {
			acks = append(acks, &ua.SubscriptionAcknowledgement{SubscriptionID: res.SubscriptionID, SequenceNumber: res.NotificationMessage.SequenceNumber})
		}
		select {
		case out <- published{res: res, err: err, at: time.Now()}:
		case <-ctx.Done():
			return
		}
		var sc ua.StatusCode
		errors.As(err, &sc)
		switch {
		case err == nil || sc == ua.StatusBadTimeout:
		case lost(err):
			return // run ends the session
		case sc == ua.StatusBadNoSubscription:
			select {
			case <-resume:
			case <-ctx.Done():
				return
			}
		default:
			pause.Reset(time.Second)
			select {
			case <-pause.C:
			case <-ctx.Done():
				return
			}
		}
	}
}

// published handles one Publish answer: the changes it carries, why the
// subscription must be re-created (nil: it need not), or the error that
// ends the session.
func (d *Driver) published(ctx context.Context, s *session, sub *subscription, p published) ([]drivers.Change, error, error) {
	if p.err != nil {
		var sc ua.StatusCode
		errors.As(p.err, &sc)
		switch {
		case lost(p.err):
			return nil, nil, fmt.Errorf("publish: %w", describe(p.err))
		case sc == ua.StatusBadNoSubscription || sc == ua.StatusBadSubscriptionIDInvalid:
			return nil, fmt.Errorf("subscription gone on the server (%w)", StatusError{sc}), nil
		}
		// BadTimeout (an idle Publish the server or gopcua timed out),
		// BadTooManyPublishRequests, ...: the session is fine; a
		// subscription that stays silent is caught by the watchdog.
		d.log.Debug("opcua: publish fault", "device", d.cfg.Device, "err", describe(p.err))
		return nil, nil, nil
	}
	res := p.res
	if res.SubscriptionID != sub.id || res.NotificationMessage == nil {
		return nil, nil, nil // an earlier subscription's answer
	}
	sub.heard = p.at
	msg := res.NotificationMessage
	if len(msg.NotificationData) == 0 {
		d.keepAlives.Add(1)
		// A keep-alive carries the number of the next data message (some
		// servers send the last one's: lower is not a gap).
		if msg.SequenceNumber > sub.nextSeq {
			return d.gap(ctx, s, sub, msg.SequenceNumber)
		}
		return nil, nil, nil
	}
	var changes []drivers.Change
	// Lower than expected: the numbers wrapped at 2^32 or the server
	// numbers afresh; the message's values are current either way.
	if msg.SequenceNumber > sub.nextSeq {
		missed, why, err := d.gap(ctx, s, sub, msg.SequenceNumber)
		if why != nil || err != nil {
			return missed, why, err
		}
		changes = missed
	}
	sub.nextSeq = msg.SequenceNumber + 1
	more, why := d.notification(ctx, s, sub, msg)
	return append(changes, more...), why, nil
}

// maxRepublish bounds the messages a gap asks for again one by one; a
// larger gap re-creates the subscription at once.
const maxRepublish = 10

// gap asks the server again for the data messages sub.nextSeq..seq-1,
// which linegate did not get (a Publish answer lost in a timeout). If the
// server no longer has them, values may have changed unseen: the
// subscription is re-created, which sends every item's current value.
func (d *Driver) gap(ctx context.Context, s *session, sub *subscription, seq uint32) ([]drivers.Change, error, error) {
	var changes []drivers.Change
	if seq-sub.nextSeq > maxRepublish {
		return nil, fmt.Errorf("data messages %d..%d lost", sub.nextSeq, seq-1), nil
	}
	for n := sub.nextSeq; n < seq; n++ {
		var res *ua.RepublishResponse
		rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		err := s.c.Send(rctx, &ua.RepublishRequest{SubscriptionID: sub.id, RetransmitSequenceNumber: n}, func(v ua.Response) error { return assign(v, &res) })
		cancel()
		if err != nil && lost(err) {
			return nil, nil, fmt.Errorf("republish: %w", describe(err))
		}
		if err == nil && res.NotificationMessage == nil {
			err = ua.StatusBadMessageNotAvailable
		}
		if err != nil {
			return nil, fmt.Errorf("data messages %d..%d lost, republish: %w", sub.nextSeq, seq-1, describe(err)), nil
		}
		more, why := d.notification(ctx, s, sub, res.NotificationMessage)
		if why != nil {
			return nil, why, nil
		}
		changes = append(changes, more...)
	}
	sub.nextSeq = seq
	return changes, nil, nil
}

// assign stores a response of the expected type.
func assign[T ua.Response](v ua.Response, dst *T) error {
	r, ok := v.(T)
	if !ok {
		return fmt.Errorf("unexpected response %T", v)
	}
	*dst = r
	return nil
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
		if !lost(err) {
			return nil // the server answered
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
// BadTooManyOperations, and remembered for the next sessions). Tags the
// server refuses, or without a node id, get a bad change and are retried
// later. A service failure is returned.
//
// A browse path whose node came back BadNodeIdUnknown (a PLC program
// download renumbered it) is resolved again and monitored once more at
// once, when again is true.
func (d *Driver) monitor(ctx context.Context, s *session, sub *subscription, idx []int, again bool) ([]drivers.Change, error) {
	var changes []drivers.Change
	var moved []int
	var todo []int
	for _, i := range idx {
		if d.ids[i] == nil {
			sub.items[i] = item{failed: true}
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
		var res *ua.CreateMonitoredItemsResponse
		rctx, cancel := context.WithTimeout(ctx, d.cfg.ConnectTimeout)
		err := s.c.Send(rctx, &ua.CreateMonitoredItemsRequest{SubscriptionID: sub.id,
			TimestampsToReturn: ua.TimestampsToReturnBoth, ItemsToCreate: reqs},
			func(v ua.Response) error { return assign(v, &res) })
		cancel()
		var sc ua.StatusCode
		if errors.As(err, &sc) && sc == ua.StatusBadTooManyOperations && n > 1 {
			s.maxMon = max(1, n/2)
			d.learnedMon = s.maxMon
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
				sub.items[i] = item{failed: true}
				err := nodeErr(d.ids[i], StatusError{st})
				if d.invalidate(i, st) && again {
					moved = append(moved, i)
					continue
				}
				changes = append(changes, drivers.Change{Index: i, Sample: drivers.Sample{Quality: drivers.Bad, Err: err}})
				d.log.Warn("opcua: monitored item refused", "device", d.cfg.Device, "tag", d.tags[i].Name, "err", err)
				continue
			}
			sub.items[i] = item{id: r.MonitoredItemID}
		}
		todo = todo[n:]
	}
	if len(moved) > 0 {
		d.resolve(ctx, s)
		more, err := d.monitor(ctx, s, sub, moved, false)
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

// notification turns one data message into changes; a bad
// StatusChangeNotification (the server ended the subscription) is why it
// must be re-created.
func (d *Driver) notification(ctx context.Context, s *session, sub *subscription, msg *ua.NotificationMessage) ([]drivers.Change, error) {
	var changes []drivers.Change
	var gone []uint32
	now := time.Now()
	for _, data := range msg.NotificationData {
		if data == nil {
			continue
		}
		switch v := data.Value.(type) {
		case *ua.StatusChangeNotification:
			if v != nil && quality(v.Status) == drivers.Bad {
				return changes, fmt.Errorf("subscription ended by the server (%w)", StatusError{v.Status})
			}
		case *ua.DataChangeNotification:
			if v == nil {
				continue
			}
			for _, mi := range v.MonitoredItems {
				if mi == nil || int(mi.ClientHandle) >= len(d.tags) || sub.items[mi.ClientHandle].failed {
					continue
				}
				i := int(mi.ClientHandle)
				d.dataChanges.Add(1)
				smp := sample(mi.Value)
				skewed(&smp, now, d.cfg.MaxClockSkew)
				if smp.Err != nil && d.ids[i] != nil {
					smp.Err = nodeErr(d.ids[i], smp.Err)
				}
				if mi.Value != nil && d.invalidate(i, mi.Value.Status) {
					// The node is gone from under its browse path: drop the
					// item; the retry resolves the path and monitors it again.
					gone = append(gone, sub.items[i].id)
					sub.items[i] = item{failed: true}
				}
				changes = append(changes, drivers.Change{Index: i, Sample: smp})
			}
		}
	}
	if len(gone) > 0 {
		rctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
		_ = s.c.Send(rctx, &ua.DeleteMonitoredItemsRequest{SubscriptionID: sub.id, MonitoredItemIDs: gone}, func(ua.Response) error { return nil })
		cancel()
	}
	return changes, nil
}
