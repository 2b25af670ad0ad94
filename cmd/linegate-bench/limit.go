package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
	goburrow "github.com/goburrow/modbus"

	"github.com/linegate/linegate/drivers/modbus"
)

// The practical limit: the same work as linegate with nothing in between —
// raw goburrow reads of linegate's own request plan (one connection per sim
// process, the units taking turns, as linegate's link pool does) and raw
// paho QoS 1 publishes of payloads linegate produced, with the same
// in-flight window. It runs as a child process of the bench
// (linegate-bench limit SPEC) so that its CPU and RSS are its own.

type limitSpec struct {
	Sims        []string        `json:"sims"`
	Devices     int             `json:"devices"`
	PerSim      int             `json:"per_sim"`
	Tags        int             `json:"tags"`
	Interval    time.Duration   `json:"interval"`
	Paced       time.Duration   `json:"paced"` // same interval as linegate
	Flat        time.Duration   `json:"flat"`  // poll and publish flat out
	DrainMsgs   int             `json:"drain_msgs"`
	Broker      string          `json:"broker"`
	MaxInflight int             `json:"max_inflight"`
	Payloads    []payloadSample `json:"payloads"`
}

type limitResult struct {
	PacedReadings int64   `json:"paced_readings"`
	PacedSeconds  float64 `json:"paced_seconds"`
	PacedCPU      float64 `json:"paced_cpu_seconds"`
	FlatReadings  int64   `json:"flat_readings"`
	FlatSeconds   float64 `json:"flat_seconds"`
	FlatCPU       float64 `json:"flat_cpu_seconds"`
	DrainMsgs     int64   `json:"drain_msgs"`
	DrainReadings int64   `json:"drain_readings"`
	DrainSeconds  float64 `json:"drain_seconds"`
	ReadErrors    int64   `json:"read_errors"`
	PeakRSS       int64   `json:"peak_rss_bytes"`
}

func runLimit(specPath string) error {
	b, err := os.ReadFile(specPath)
	if err != nil {
		return err
	}
	var sp limitSpec
	if err := json.Unmarshal(b, &sp); err != nil {
		return fmt.Errorf("limit spec: %w", err)
	}
	if len(sp.Payloads) == 0 {
		return errors.New("limit spec: no payloads")
	}
	tags, err := deviceTags(sp.Tags)
	if err != nil {
		return err
	}
	devs := layoutDevices(sp.Devices, sp.PerSim, sp.Sims)
	pl, err := plans(devs, tags)
	if err != nil {
		return err
	}
	pub, err := newPublisher(sp.Broker, sp.MaxInflight)
	if err != nil {
		return err
	}
	defer pub.close()
	byDev := payloadsByDevice(devs, sp.Payloads)

	var res limitResult
	cpu0 := selfCPU()
	// Ticks at interval, 2·interval … Paced: half an interval of slack
	// lets the last one run, and the rate is per Paced.
	n, errs := pollAll(sp, devs, pl, byDev, pub, sp.Interval, sp.Paced+sp.Interval/2)
	pub.wait()
	res.PacedReadings, res.PacedSeconds, res.ReadErrors = n, sp.Paced.Seconds(), errs
	res.PacedCPU = selfCPU() - cpu0

	cpu0 = selfCPU()
	t0 := time.Now()
	n, errs = pollAll(sp, devs, pl, byDev, pub, 0, sp.Flat)
	pub.wait()
	res.FlatReadings, res.FlatSeconds, res.FlatCPU = n, time.Since(t0).Seconds(), selfCPU()-cpu0
	res.ReadErrors += errs

	t0 = time.Now()
	for i := range sp.DrainMsgs {
		p := sp.Payloads[i%len(sp.Payloads)]
		pub.publish(p)
		res.DrainReadings += int64(p.Readings)
	}
	pub.wait()
	res.DrainMsgs, res.DrainSeconds = int64(sp.DrainMsgs), time.Since(t0).Seconds()
	if pub.failed.Load() > 0 {
		return fmt.Errorf("limit: %d publishes failed", pub.failed.Load())
	}
	res.PeakRSS, _ = peakRSS(os.Getpid())
	return json.NewEncoder(os.Stdout).Encode(res)
}

// payloadsByDevice gives each device the payloads linegate published for
// it (one per class), or all of them when the subscriber saw none.
func payloadsByDevice(devs []device, all []payloadSample) [][]payloadSample {
	out := make([][]payloadSample, len(devs))
	for i, d := range devs {
		for _, p := range all {
			if strings.Contains(p.Topic, "/"+d.name+"/") {
				out[i] = append(out[i], p)
			}
		}
		if len(out[i]) == 0 {
			out[i] = all
		}
	}
	return out
}

// pollAll runs one goroutine per sim process for d: each cycle reads every
// request of its devices and publishes their payloads. interval 0 = flat
// out. It returns the readings (tags read) and the failed reads.
func pollAll(sp limitSpec, devs []device, pl [][]modbus.Request, byDev [][]payloadSample, pub *publisher, interval, d time.Duration) (int64, int64) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var readings, errs atomic.Int64
	var wg sync.WaitGroup
	for _, addr := range sp.Sims {
		var mine []int
		for i, dv := range devs {
			if dv.addr == addr {
				mine = append(mine, i)
			}
		}
		if len(mine) == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := goburrow.NewTCPClientHandler(addr)
			h.Timeout = time.Second
			defer h.Close()
			c := goburrow.NewClient(h)
			var tick *time.Ticker
			if interval > 0 {
				tick = time.NewTicker(interval)
				defer tick.Stop()
			}
			// Paced: the first cycle waits a tick too, so d holds d/interval cycles.
			wait := func() {
				if tick != nil {
					select {
					case <-ctx.Done():
					case <-tick.C:
					}
				}
			}
			for wait(); ctx.Err() == nil; wait() {
				for _, i := range mine {
					h.SlaveId = devs[i].unit
					for _, r := range pl[i] {
						if err := readOnce(c, r); err != nil {
							errs.Add(1)
							continue
						}
						readings.Add(int64(len(r.Tags)))
					}
					for _, p := range byDev[i] {
						pub.publish(p)
					}
				}
			}
		}()
	}
	wg.Wait()
	return readings.Load(), errs.Load()
}

func readOnce(c goburrow.Client, r modbus.Request) error {
	var err error
	switch r.Register {
	case "holding":
		_, err = c.ReadHoldingRegisters(r.Address, r.Count)
	case "input":
		_, err = c.ReadInputRegisters(r.Address, r.Count)
	case "coil":
		_, err = c.ReadCoils(r.Address, r.Count)
	case "discrete":
		_, err = c.ReadDiscreteInputs(r.Address, r.Count)
	}
	return err
}

// publisher publishes QoS 1 with at most window messages unacknowledged,
// like linegate's uplink with max_inflight.
type publisher struct {
	c      mqtt.Client
	mu     sync.Mutex // keeps window order equal to token order
	window chan struct{}
	toks   chan mqtt.Token
	wg     sync.WaitGroup // outstanding publishes
	done   chan struct{}
	failed atomic.Int64
}

func newPublisher(addr string, window int) (*publisher, error) {
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("linegate-bench-limit").
		SetCleanSession(true).SetAutoReconnect(false).SetProtocolVersion(4).SetKeepAlive(30 * time.Second)
	c := mqtt.NewClient(opts)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("limit: connect %s: %v", addr, tok.Error())
	}
	p := &publisher{c: c, window: make(chan struct{}, window), toks: make(chan mqtt.Token, window), done: make(chan struct{})}
	go p.ack()
	return p, nil
}

// ack waits for the PUBACKs in order and frees the window.
func (p *publisher) ack() {
	defer close(p.done)
	for tok := range p.toks {
		tok.Wait()
		if tok.Error() != nil {
			p.failed.Add(1)
		}
		<-p.window
		p.wg.Done()
	}
}

func (p *publisher) publish(s payloadSample) {
	topic := limitTopicPrefix + strings.TrimPrefix(s.Topic, topicPrefix)
	p.mu.Lock()
	p.window <- struct{}{}
	p.wg.Add(1)
	p.toks <- p.c.Publish(topic, 1, false, s.Payload)
	p.mu.Unlock()
}

func (p *publisher) wait() { p.wg.Wait() }

func (p *publisher) close() {
	close(p.toks)
	<-p.done
	p.c.Disconnect(100)
}

func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
