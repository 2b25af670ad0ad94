package uplink

import (
	"context"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/linegate/linegate/buffer"
)

// benchReadings is the size of a message at the design load: 100 devices ×
// 100 tags at 1 s make ~300 messages a second of ~33 readings.
const benchReadings = 33

func benchMessage(created time.Time, device int) buffer.Message {
	m := buffer.Message{Created: created, Equipment: fmt.Sprintf("press%02d", device), Class: "process"}
	m.Readings = make([]buffer.Reading, benchReadings)
	for i := range m.Readings {
		m.Readings[i] = buffer.Reading{Tag: fmt.Sprintf("temperature_zone_%02d", i), Unit: "degC",
			Value: 180.25 + float64(i), TS: created.Add(-time.Duration(i) * time.Millisecond)}
	}
	return m
}

// fillSource returns a source holding n messages of benchReadings readings
// from 100 devices, created after up (so live, not historical).
func fillSource(n int, up time.Time) *memSource {
	src := newMemSource()
	msgs := make([]buffer.Message, 100)
	for d := range msgs {
		msgs[d] = benchMessage(up.Add(time.Second), d)
	}
	for i := range n {
		src.add(msgs[i%len(msgs)])
	}
	return src
}

// benchClient stands in for paho: Publish copies the payload (as paho's
// PublishPacket.Write does) and returns a completed token, as if the PUBACK
// came at once.
type benchClient struct {
	mqtt.Client // nil: only Publish is used
	sink        []byte
	tok         doneToken
}

func (c *benchClient) Publish(_ string, _ byte, _ bool, payload any) mqtt.Token {
	c.sink = append(c.sink[:0], payload.([]byte)...)
	return c.tok
}

// BenchmarkPublish measures the per-message path of the uplink (read from
// the source, encode, publish, acknowledge): "client" with a stand-in for
// paho, so only the uplink's own work counts; "broker" through paho and the
// in-process mochi broker on loopback, end to end. One op is one message.
func BenchmarkPublish(b *testing.B) {
	b.Run("client", func(b *testing.B) {
		up := time.Now()
		src := fillSource(b.N, up)
		u, err := New(testConfig("tcp://127.0.0.1:1"), src) // never dialed
		if err != nil {
			b.Fatal(err)
		}
		s := &session{gen: 1, client: &benchClient{tok: doneToken{done: closedChan()}}, lost: make(chan struct{}), up: up}
		a := newAcker(u, s)
		go a.run()
		defer a.stop()
		ctx := context.Background()
		var cursor uint64
		b.ReportAllocs()
		b.ResetTimer()
		for cursor < uint64(b.N) {
			full, err := u.fill(ctx, s, a, &cursor)
			if err != nil {
				b.Fatal(err)
			}
			if full {
				<-a.freed
			}
		}
		for u.inflight.Load() > 0 {
			<-a.freed
		}
		b.StopTimer()
		if m, _ := src.pending(); m != 0 {
			b.Fatalf("%d messages not acknowledged", m)
		}
		b.ReportMetric(float64(b.N*benchReadings)/b.Elapsed().Seconds(), "readings/s")
	})
	b.Run("broker", func(b *testing.B) {
		br := startBroker(b, "127.0.0.1:0")
		src := newMemSource()
		u, err := New(testConfig(br.url()), src)
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- u.Run(ctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				b.Error(err)
			}
		}()
		deadline := time.Now().Add(long)
		for !u.Status().Connected {
			if time.Now().After(deadline) {
				b.Fatal("not connected")
			}
			time.Sleep(time.Millisecond)
		}
		msgs := make([]buffer.Message, 100)
		for d := range msgs {
			msgs[d] = benchMessage(time.Now().Add(time.Hour), d)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			src.add(msgs[i%len(msgs)])
		}
		for {
			if m, _ := src.pending(); m == 0 {
				break
			}
			if time.Now().After(deadline.Add(long)) {
				b.Fatal("not drained")
			}
			time.Sleep(100 * time.Microsecond)
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N*benchReadings)/b.Elapsed().Seconds(), "readings/s")
	})
}
