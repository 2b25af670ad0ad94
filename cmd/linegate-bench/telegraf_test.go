package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTelegrafConfig(t *testing.T) {
	h := func(a uint16) benchTag {
		return benchTag{name: "h" + strconv.Itoa(int(a)), class: "process", register: "holding", typ: "uint16", addr: a}
	}
	devs := []device{{name: "press001", addr: "127.0.0.1:15020", unit: 1}, {name: "press002", addr: "127.0.0.1:15020", unit: 2}, {name: "press011", addr: "127.0.0.1:15021", unit: 1}}
	cases := []struct {
		name     string
		spec     telegrafSpec
		contains []string
		absent   []string
		count    map[string]int // substring → exact occurrences
		err      string
	}{
		{name: "one section per device, the same registers for each",
			spec: telegrafSpec{broker: "127.0.0.1:41883", interval: time.Second, devices: devs, tags: []benchTag{h(64), h(65)}},
			contains: []string{
				"  interval = \"1s\"\n", "  flush_interval = \"1s\"\n", "round_interval = true", `collection_jitter = "0s"`,
				`  controller = "tcp://127.0.0.1:15021"` + "\n  slave_id = 1\n",
				`  name = "press002"` + "\n" + `  controller = "tcp://127.0.0.1:15020"` + "\n  slave_id = 2\n",
				`    { name = "h64", byte_order = "AB", data_type = "UINT16", scale = 1.0, address = [64] },` + "\n" +
					`    { name = "h65", byte_order = "AB", data_type = "UINT16", scale = 1.0, address = [65] },`,
				`servers = ["tcp://127.0.0.1:41883"]`, "  qos = 1\n", `data_format = "json"`, `topic = 'benchtelegraf/{{ .Name }}/{{ .Tag "name" }}'`,
			},
			absent: []string{"input_registers", ":1883\""},
			count:  map[string]int{"[[inputs.modbus]]": 3, "[[outputs.mqtt]]": 1, `address = [64]`: 3, "holding_registers = [": 3}},
		{name: "input registers go to their own list",
			spec:     telegrafSpec{broker: "127.0.0.1:1", interval: 500 * time.Millisecond, devices: devs[:1], tags: []benchTag{h(64), {name: "i5", register: "input", typ: "uint16", addr: 5}}},
			contains: []string{`interval = "500ms"`, "  input_registers = [\n" + `    { name = "i5", byte_order = "AB", data_type = "UINT16", scale = 1.0, address = [5] },`},
			count:    map[string]int{"holding_registers": 1, "input_registers": 1}},
		{name: "a wider type is not mapped", err: "only uint16",
			spec: telegrafSpec{broker: "127.0.0.1:1", interval: time.Second, devices: devs, tags: []benchTag{{name: "t", register: "holding", typ: "float32"}}}},
		{name: "coils are not mapped", err: "holding or input",
			spec: telegrafSpec{broker: "127.0.0.1:1", interval: time.Second, devices: devs, tags: []benchTag{{name: "c", register: "coil", typ: "uint16"}}}},
		{name: "no devices", err: "no devices",
			spec: telegrafSpec{broker: "127.0.0.1:1", interval: time.Second, tags: []benchTag{h(64)}}},
		{name: "no interval", err: "interval",
			spec: telegrafSpec{broker: "127.0.0.1:1", devices: devs, tags: []benchTag{h(64)}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := telegrafConfig(tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.contains {
				if !strings.Contains(got, s) {
					t.Errorf("config lacks %q:\n%s", s, got)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(got, s) {
					t.Errorf("config has %q:\n%s", s, got)
				}
			}
			for s, n := range tc.count {
				if c := strings.Count(got, s); c != n {
					t.Errorf("%q occurs %d times, want %d", s, c, n)
				}
			}
		})
	}
}

func TestTelegrafReadings(t *testing.T) {
	cases := []struct {
		name, in string
		want     int
		err      bool
	}{
		{name: "one metric, as v1.39.3 publishes it",
			in:   `{"fields":{"h64":0,"h65":7},"name":"modbus","tags":{"name":"press001","slave_id":"1","type":"holding_register"},"timestamp":1796301990}`,
			want: 2},
		{name: "batch", in: `{"metrics":[{"fields":{"a":1}},{"fields":{"b":2,"c":3}}]}`, want: 3},
		{name: "empty fields", in: `{"fields":{},"name":"modbus"}`, want: 0},
		{name: "not telegraf", in: `{"seq":1}`, err: true},
		{name: "not json", in: `modbus,name=x h64=0u 1`, err: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := telegrafReadings([]byte(tc.in))
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("got %d, %v; want %d, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestParseLoads(t *testing.T) {
	cases := []struct {
		in   string
		want []loadSpec
		err  bool
	}{
		{in: "1x1,10x20,100x100", want: []loadSpec{{1, 1}, {10, 20}, {100, 100}}},
		{in: " 400x250 ,", want: []loadSpec{{400, 250}}},
		{in: "", err: true},
		{in: "10", err: true},
		{in: "0x5", err: true},
		{in: "10xten", err: true},
	}
	for _, tc := range cases {
		got, err := parseLoads(tc.in)
		if (err != nil) != tc.err || len(got) != len(tc.want) {
			t.Errorf("%q: got %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

func TestUint16Tags(t *testing.T) {
	cases := []struct {
		n          int
		first, end string
		err        bool
	}{
		{n: 1, first: "h64", end: "h64"},
		{n: 100, first: "h64", end: "h163"},
		{n: 136, first: "h64", end: "h199"},
		{n: 137, err: true},
		{n: 0, err: true},
	}
	for _, tc := range cases {
		got, err := uint16Tags(tc.n)
		if (err != nil) != tc.err {
			t.Errorf("%d: err = %v, want error %v", tc.n, err, tc.err)
			continue
		}
		if tc.err {
			continue
		}
		if len(got) != tc.n || got[0].name != tc.first || got[len(got)-1].name != tc.end {
			t.Errorf("%d: got %d tags %s..%s, want %s..%s", tc.n, len(got), got[0].name, got[len(got)-1].name, tc.first, tc.end)
		}
		for _, g := range got {
			if g.register != "holding" || g.typ != "uint16" {
				t.Errorf("%d: tag %+v is not a uint16 holding register", tc.n, g)
			}
		}
	}
}

func TestLogProblems(t *testing.T) {
	cases := []struct {
		name, agent, log string
		n                int
		last             string
	}{
		{name: "telegraf start-up notice only", agent: "telegraf",
			log: "2026-12-03T12:46:25Z W! Strict environment variable handling is the new default starting with v1.38.0!\n2026-12-03T12:46:25Z I! Loading config: /tmp/tg.conf\n"},
		{name: "telegraf skipped gathers", agent: "telegraf",
			log: "2026-12-03T12:46:25Z I! Loading config\n2026-12-03T12:47:01Z W! [inputs.modbus] Collection took longer than expected; not complete after interval of 1s\n" +
				"2026-12-03T12:47:02Z E! [inputs.modbus] Error in plugin: read tcp: i/o timeout\n",
			n: 2, last: "2026-12-03T12:47:02Z E! [inputs.modbus] Error in plugin: read tcp: i/o timeout"},
		{name: "linegate quiet", agent: "linegate", log: ""},
		{name: "linegate warning", agent: "linegate",
			log: "time=2026-12-03T12:47:01Z level=INFO msg=started\ntime=2026-12-03T12:47:02Z level=WARN msg=\"press001: read holding 0x0040: i/o timeout\"\n",
			n:   1, last: "time=2026-12-03T12:47:02Z level=WARN msg=\"press001: read holding 0x0040: i/o timeout\""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n, last := logProblems(tc.agent, tc.log)
			if n != tc.n || last != tc.last {
				t.Fatalf("got %d, %q; want %d, %q", n, last, tc.n, tc.last)
			}
		})
	}
}
