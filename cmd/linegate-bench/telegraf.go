package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// Telegraf, side by side: the same devices read by Telegraf's modbus input
// and published by its mqtt output, QoS 1, JSON.

const telegrafTopicPrefix = "benchtelegraf"

// telegrafSpec is what the generated Telegraf config reads and where it
// publishes.
type telegrafSpec struct {
	broker   string // host:port on loopback
	interval time.Duration
	devices  []device
	tags     []benchTag
}

// telegrafConfig returns a Telegraf TOML config that polls every device's
// tags as linegate's config does: one [[inputs.modbus]] per device (its
// own connection, register configuration style, which joins consecutive
// registers into one request, as linegate's plan does), gathered and
// flushed every interval, one MQTT message per device and gather.
func telegrafConfig(s telegrafSpec) (string, error) {
	if len(s.devices) == 0 || len(s.tags) == 0 {
		return "", errors.New("telegraf config: no devices or no tags")
	}
	if s.interval <= 0 {
		return "", fmt.Errorf("telegraf config: interval %v", s.interval)
	}
	var holding, input []string
	for _, t := range s.tags {
		if t.typ != "uint16" {
			return "", fmt.Errorf("telegraf config: tag %s: type %s (only uint16, one register, is mapped)", t.name, t.typ)
		}
		e := fmt.Sprintf(`    { name = %s, byte_order = "AB", data_type = "UINT16", scale = 1.0, address = [%d] },`, strconv.Quote(t.name), t.addr)
		switch t.register {
		case "holding":
			holding = append(holding, e)
		case "input":
			input = append(input, e)
		default:
			return "", fmt.Errorf("telegraf config: tag %s: register %s (holding or input)", t.name, t.register)
		}
	}
	iv := strconv.Quote(s.interval.String())
	var b strings.Builder
	// round_interval: gathers on the wall-clock grid, as linegate polls;
	// no jitter, so both read at the same rate; omit_hostname keeps the
	// topic and payload free of the machine's name.
	fmt.Fprintf(&b, `[agent]
  interval = %s
  round_interval = true
  metric_batch_size = 1000
  metric_buffer_limit = 100000
  collection_jitter = "0s"
  flush_interval = %s
  flush_jitter = "0s"
  precision = "0s"
  omit_hostname = true
  quiet = true
`, iv, iv)
	for _, d := range s.devices {
		fmt.Fprintf(&b, `
[[inputs.modbus]]
  name = %s
  controller = %s
  slave_id = %d
  timeout = "1s"
  configuration_type = "register"
`, strconv.Quote(d.name), strconv.Quote("tcp://"+d.addr), d.unit)
		if len(holding) > 0 {
			fmt.Fprintf(&b, "  holding_registers = [\n%s\n  ]\n", strings.Join(holding, "\n"))
		}
		if len(input) > 0 {
			fmt.Fprintf(&b, "  input_registers = [\n%s\n  ]\n", strings.Join(input, "\n"))
		}
	}
	// keep_alive: Mosquitto ≥ 2.0.12 needs it non-zero (Telegraf's own
	// note); 30 s as linegate's paho default.
	fmt.Fprintf(&b, `
[[outputs.mqtt]]
  servers = [%s]
  topic = '%s/{{ .Name }}/{{ .Tag "name" }}'
  qos = 1
  keep_alive = 30
  client_id = "linegate-bench-telegraf"
  layout = "non-batch"
  data_format = "json"
`, strconv.Quote("tcp://"+s.broker), telegrafTopicPrefix)
	return b.String(), nil
}

// telegrafReadings counts the fields (readings) of one Telegraf JSON
// message: a single metric, or a batch {"metrics": [...]}.
func telegrafReadings(p []byte) (int, error) {
	var m struct {
		Fields  map[string]json.RawMessage `json:"fields"`
		Metrics []struct {
			Fields map[string]json.RawMessage `json:"fields"`
		} `json:"metrics"`
	}
	if err := json.Unmarshal(p, &m); err != nil {
		return 0, fmt.Errorf("telegraf payload: %w", err)
	}
	n := len(m.Fields)
	for _, x := range m.Metrics {
		n += len(x.Fields)
	}
	if m.Fields == nil && m.Metrics == nil {
		return 0, errors.New("telegraf payload: no fields and no metrics")
	}
	return n, nil
}

// fieldCounter counts Telegraf's messages and readings at the broker.
type fieldCounter struct {
	client mqtt.Client

	mu       sync.Mutex
	msgs     int64
	readings int64
	bad      int64
	badErr   error
}

func newFieldCounter(addr string) (*fieldCounter, error) {
	c := &fieldCounter{}
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("linegate-bench-tsub").
		SetCleanSession(true).SetAutoReconnect(true).SetOrderMatters(false).SetProtocolVersion(4)
	opts.SetOnConnectHandler(func(cl mqtt.Client) { cl.Subscribe(telegrafTopicPrefix+"/#", 1, c.onMsg) })
	c.client = mqtt.NewClient(opts)
	tok := c.client.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return nil, fmt.Errorf("telegraf subscriber: connect %s: %v", addr, tok.Error())
	}
	st := c.client.Subscribe(telegrafTopicPrefix+"/#", 1, c.onMsg)
	if !st.WaitTimeout(10*time.Second) || st.Error() != nil {
		return nil, fmt.Errorf("telegraf subscriber: subscribe: %v", st.Error())
	}
	return c, nil
}

func (c *fieldCounter) onMsg(_ mqtt.Client, m mqtt.Message) {
	n, err := telegrafReadings(m.Payload())
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.bad++
		c.badErr = err
		return
	}
	c.msgs++
	c.readings += int64(n)
}

// counts returns messages and readings so far, and the last payload error.
func (c *fieldCounter) counts() (msgs, readings, bad int64, badErr error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.msgs, c.readings, c.bad, c.badErr
}

func (c *fieldCounter) close() { c.client.Disconnect(100) }

// startTelegraf writes the config into dir and starts bin with it.
func startTelegraf(bin, dir string, s telegrafSpec) (*proc, error) {
	conf, err := telegrafConfig(s)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "telegraf.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	return start(bin, "--config", path)
}
