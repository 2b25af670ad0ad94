package modbus

import (
	"reflect"
	"strings"
	"testing"
)

// tg is a short way to write a tag in the tables below.
func tg(reg string, addr uint16, typ string) Tag {
	return Tag{Name: reg + typ, Register: reg, Address: addr, Type: typ, Bit: -1}
}

func bitTag(addr uint16, bit int) Tag {
	return Tag{Name: "bit", Register: "holding", Address: addr, Type: "bool", Bit: bit}
}

func strTag(addr uint16, length int) Tag {
	return Tag{Name: "text", Register: "holding", Address: addr, Type: "string", Length: length, Bit: -1}
}

func TestPlan(t *testing.T) {
	tests := []struct {
		name    string
		maxGap  int
		maxRegs int
		maxBits int
		tags    []Tag
		want    []Request
	}{
		{
			name: "adjacent tags merge",
			tags: []Tag{tg("holding", 0, "float32"), tg("holding", 2, "int16"), tg("holding", 3, "uint32")},
			want: []Request{{"holding", 0, 5, []int{0, 1, 2}}},
		},
		{
			name: "sorted by address, indexes in config order",
			tags: []Tag{tg("holding", 14, "uint16"), tg("holding", 0, "float32"), tg("holding", 12, "uint32"), tg("holding", 10, "uint16")},
			want: []Request{{"holding", 0, 15, []int{1, 3, 2, 0}}},
		},
		{
			name: "hole of exactly max gap is bridged",
			tags: []Tag{tg("holding", 0, "uint16"), tg("holding", 11, "uint16")},
			want: []Request{{"holding", 0, 12, []int{0, 1}}},
		},
		{
			name: "hole one past max gap splits",
			tags: []Tag{tg("holding", 0, "uint16"), tg("holding", 12, "uint16")},
			want: []Request{{"holding", 0, 1, []int{0}}, {"holding", 12, 1, []int{1}}},
		},
		{
			name:   "custom max gap",
			maxGap: 3,
			tags:   []Tag{tg("input", 0, "uint16"), tg("input", 4, "uint16"), tg("input", 9, "uint16")},
			want:   []Request{{"input", 0, 5, []int{0, 1}}, {"input", 9, 1, []int{2}}},
		},
		{
			name:   "negative max gap: only adjacent tags merge",
			maxGap: -1,
			tags:   []Tag{tg("holding", 0, "uint16"), tg("holding", 1, "float32"), tg("holding", 4, "uint16")},
			want:   []Request{{"holding", 0, 3, []int{0, 1}}, {"holding", 4, 1, []int{2}}},
		},
		{
			name:   "span of 125 registers fits",
			maxGap: 200,
			tags:   []Tag{tg("holding", 0, "uint16"), tg("holding", 124, "uint16")},
			want:   []Request{{"holding", 0, 125, []int{0, 1}}},
		},
		{
			name:   "span of 126 registers splits",
			maxGap: 200,
			tags:   []Tag{tg("holding", 0, "uint16"), tg("holding", 124, "float32")},
			want:   []Request{{"holding", 0, 1, []int{0}}, {"holding", 124, 2, []int{1}}},
		},
		{
			name:    "smaller max registers",
			maxRegs: 4,
			tags:    []Tag{tg("holding", 0, "float32"), tg("holding", 2, "float32"), tg("holding", 4, "float32")},
			want:    []Request{{"holding", 0, 4, []int{0, 1}}, {"holding", 4, 2, []int{2}}},
		},
		{
			name:   "span of 2000 bits fits",
			maxGap: 2000,
			tags:   []Tag{tg("coil", 0, "bool"), tg("coil", 1999, "bool")},
			want:   []Request{{"coil", 0, 2000, []int{0, 1}}},
		},
		{
			name:   "span of 2001 bits splits",
			maxGap: 2000,
			tags:   []Tag{tg("discrete", 0, "bool"), tg("discrete", 2000, "bool")},
			want:   []Request{{"discrete", 0, 1, []int{0}}, {"discrete", 2000, 1, []int{1}}},
		},
		{
			name: "bit gap counts bits",
			tags: []Tag{tg("coil", 0, "bool"), tg("coil", 11, "bool"), tg("coil", 23, "bool")},
			want: []Request{{"coil", 0, 12, []int{0, 1}}, {"coil", 23, 1, []int{2}}},
		},
		{
			name: "bits of one status word share it",
			tags: []Tag{bitTag(60, 0), bitTag(60, 1), bitTag(60, 2), bitTag(60, 3), tg("holding", 60, "uint16")},
			want: []Request{{"holding", 60, 1, []int{0, 1, 2, 3, 4}}},
		},
		{
			name: "overlapping tags share registers",
			tags: []Tag{tg("holding", 0, "float64"), tg("holding", 2, "uint32"), tg("holding", 3, "uint16")},
			want: []Request{{"holding", 0, 4, []int{0, 1, 2}}},
		},
		{
			name: "a wide tag before a narrow one keeps the wider end",
			tags: []Tag{strTag(0, 20), tg("holding", 5, "uint16"), tg("holding", 25, "uint16")},
			want: []Request{{"holding", 0, 26, []int{0, 1, 2}}},
		},
		{
			name: "string width is its length",
			tags: []Tag{strTag(50, 8), tg("holding", 58, "uint16")},
			want: []Request{{"holding", 50, 9, []int{0, 1}}},
		},
		{
			name: "a 125 register string takes a read of its own",
			tags: []Tag{tg("holding", 0, "uint16"), strTag(1, 125)},
			want: []Request{{"holding", 0, 1, []int{0}}, {"holding", 1, 125, []int{1}}},
		},
		{
			name: "64-bit values are four registers",
			tags: []Tag{tg("holding", 30, "int64"), tg("holding", 34, "uint64"), tg("holding", 40, "float64")},
			want: []Request{{"holding", 30, 14, []int{0, 1, 2}}},
		},
		{
			name: "kinds never mix; order holding, input, coil, discrete",
			tags: []Tag{tg("discrete", 3, "bool"), tg("coil", 0, "bool"), tg("input", 4, "int16"), tg("holding", 0, "float32"), tg("holding", 10, "uint16"), tg("input", 0, "uint16")},
			want: []Request{
				{"holding", 0, 11, []int{3, 4}},
				{"input", 0, 5, []int{5, 2}},
				{"coil", 0, 1, []int{1}},
				{"discrete", 3, 1, []int{0}},
			},
		},
		{
			name: "top of the address space",
			tags: []Tag{tg("holding", 0xFFFC, "uint64"), tg("coil", 0xFFFF, "bool")},
			want: []Request{{"holding", 0xFFFC, 4, []int{0}}, {"coil", 0xFFFF, 1, []int{1}}},
		},
		{
			name: "no tags",
			want: []Request{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := New(Config{Address: "tcp://127.0.0.1", MaxGap: tc.maxGap, MaxRegisters: tc.maxRegs, MaxBits: tc.maxBits, Tags: tc.tags})
			if err != nil {
				t.Fatal(err)
			}
			got := d.Plan()
			if len(got) == 0 && len(tc.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("plan:\n got %v\nwant %v", got, tc.want)
			}
			// Every tag is in exactly one request, inside its range.
			seen := make([]int, len(tc.tags))
			for _, r := range got {
				for _, i := range r.Tags {
					seen[i]++
					f := d.fields[i]
					if f.addr < r.Address || int(f.addr)+int(f.width) > int(r.Address)+int(r.Count) {
						t.Errorf("tag %d (0x%04X+%d) outside %v", i, f.addr, f.width, r)
					}
				}
			}
			for i, n := range seen {
				if n != 1 {
					t.Errorf("tag %d in %d requests", i, n)
				}
			}
		})
	}
}

func TestPlanIsACopy(t *testing.T) {
	d, err := New(Config{Address: "tcp://127.0.0.1", Tags: []Tag{tg("holding", 0, "uint16")}})
	if err != nil {
		t.Fatal(err)
	}
	p := d.Plan()
	p[0].Tags[0] = 99
	p[0].Count = 7
	if q := d.Plan(); q[0].Tags[0] != 0 || q[0].Count != 1 {
		t.Errorf("Plan exposes internal state: %v", q)
	}
}

func TestRequestString(t *testing.T) {
	tests := []struct {
		r    Request
		want string
	}{
		{Request{"holding", 0, 14, []int{0, 1, 2, 3, 4}}, "holding 0x0000+14 (5 tags)"},
		{Request{"coil", 0xABCD, 1, []int{7}}, "coil 0xABCD+1 (1 tag)"},
	}
	for _, tc := range tests {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("got %q, want %q", got, tc.want)
		}
	}
}

func TestNewRejects(t *testing.T) {
	ok := Config{Device: "press01", Address: "tcp://127.0.0.1:5020"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"scheme", func(c *Config) { c.Address = "udp://h:502" }, `press01: address "udp://h:502": want tcp://host:port`},
		{"rtu unit 0", func(c *Config) { c.Address = "rtu:///dev/ttyUSB0" }, "unit id 0: want 1..247 on a serial line"},
		{"rtu baud", func(c *Config) { c.UnitID = 1; c.Address = "rtu:///dev/ttyUSB0?baud=12345" }, `baud "12345": want one of`},
		{"rtu parity", func(c *Config) { c.UnitID = 1; c.Address = "rtu:///dev/ttyUSB0?parity=X" }, `parity "X": want N, E or O`},
		{"rtu data bits", func(c *Config) { c.UnitID = 1; c.Address = "rtu:///dev/ttyUSB0?data_bits=7" }, "RTU needs data_bits 8"},
		{"rtu stop bits", func(c *Config) { c.UnitID = 1; c.Address = "rtu:///dev/ttyUSB0?stop_bits=3" }, `stop_bits "3": want 1 or 2`},
		{"rtu unknown option", func(c *Config) { c.UnitID = 1; c.Address = "rtu:///dev/ttyUSB0?speed=9600" }, `unknown option "speed"`},
		{"rtu two slashes", func(c *Config) { c.UnitID = 1; c.Address = "rtu://dev/ttyUSB0" }, "three slashes"},
		{"close after poll on serial", func(c *Config) { c.UnitID = 1; c.Address = "rtu:///dev/ttyUSB0"; c.CloseAfterPoll = true }, "applies to tcp://"},
		{"pause", func(c *Config) { c.Pause = -1 }, "pause between requests -1ns is negative"},
		{"max connections", func(c *Config) { c.MaxConnections = 65 }, "max connections 65: want 1..64"},
		{"no host", func(c *Config) { c.Address = "tcp://:502" }, "want tcp://host:port"},
		{"bare host", func(c *Config) { c.Address = "10.0.0.1:502" }, "want tcp://host:port"},
		{"query", func(c *Config) { c.Address = "tcp://h:502?x=1" }, "want tcp://host:port"},
		{"byte order", func(c *Config) { c.ByteOrder = "ABDC" }, `byte order "ABDC"`},
		{"timeout", func(c *Config) { c.Timeout = -1 }, "negative"},
		{"max registers", func(c *Config) { c.MaxRegisters = 126 }, "max registers 126: want 1..125"},
		{"max bits", func(c *Config) { c.MaxBits = 2001 }, "max bits 2001: want 1..2000"},
		{"register", func(c *Config) { c.Tags = []Tag{{Name: "t", Register: "holdings", Type: "uint16", Bit: -1}} }, `press01/t: register "holdings"`},
		{"type", func(c *Config) { c.Tags = []Tag{{Name: "temperature", Register: "holding", Type: "flaot32", Bit: -1}} }, `press01/temperature: type "flaot32"`},
		{"unnamed", func(c *Config) { c.Tags = []Tag{tg("holding", 0, "uint16"), {Register: "x"}} }, "press01/tags[1]: register"},
		{"tag byte order", func(c *Config) {
			c.Tags = []Tag{{Name: "t", Register: "input", Type: "int32", ByteOrder: "XY", Bit: -1}}
		}, `byte order "XY"`},
		{"coil type", func(c *Config) { c.Tags = []Tag{tg("coil", 0, "uint16")} }, "coil is bool only"},
		{"bit range", func(c *Config) { c.Tags = []Tag{bitTag(0, 16)} }, "bit 16: want 0..15"},
		{"bit type", func(c *Config) { c.Tags = []Tag{{Name: "t", Register: "holding", Type: "uint16", Bit: 3}} }, "bit applies to bool"},
		{"bit on coil", func(c *Config) { c.Tags = []Tag{{Name: "t", Register: "coil", Type: "bool", Bit: 3}} }, "bit applies to bool"},
		{"string length 0", func(c *Config) { c.Tags = []Tag{strTag(0, 0)} }, "string length 0: want 1..125"},
		{"string too long", func(c *Config) { c.Tags = []Tag{strTag(0, 126)} }, "string length 126"},
		{"string longer than max registers", func(c *Config) { c.MaxRegisters = 4; c.Tags = []Tag{strTag(0, 5)} }, "string length 5: want 1..4"},
		{"length on number", func(c *Config) { c.Tags = []Tag{{Name: "t", Register: "holding", Type: "uint16", Length: 2, Bit: -1}} }, "length applies to string"},
		{"past 0xFFFF", func(c *Config) { c.Tags = []Tag{tg("holding", 0xFFFE, "float64")} }, "runs past 0xFFFF"},
		{"wider than max registers", func(c *Config) { c.MaxRegisters = 2; c.Tags = []Tag{tg("holding", 0, "int64")} }, "needs 4 registers"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := New(cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := New(ok); err != nil {
		t.Errorf("valid config: %v", err)
	}
}

func TestParseSerial(t *testing.T) {
	tests := []struct {
		in   string
		want serialConfig
	}{
		{"rtu:///dev/ttyUSB0", serialConfig{"/dev/ttyUSB0", 19200, "E", 8, 1, false}},
		{"rtu:///dev/ttyUSB0?baud=9600&parity=n&data_bits=8&stop_bits=2", serialConfig{"/dev/ttyUSB0", 9600, "N", 8, 2, false}},
		{"ascii:///dev/ttyS1?data_bits=7&parity=O", serialConfig{"/dev/ttyS1", 19200, "O", 7, 1, false}},
		{"rtu://COM3?baud=115200", serialConfig{"COM3", 115200, "E", 8, 1, false}},
		{"rtu:///dev/ttyS1?rs485=true", serialConfig{"/dev/ttyS1", 19200, "E", 8, 1, true}},
	}
	for _, tc := range tests {
		got, err := parseSerial(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
	if s := (serialConfig{"/dev/ttyUSB0", 19200, "E", 8, 1, false}).String(); s != "/dev/ttyUSB0 19200 8E1" {
		t.Errorf("String() = %q", s)
	}
	if s := (serialConfig{"/dev/ttyS1", 9600, "N", 8, 1, true}).String(); s != "/dev/ttyS1 9600 8N1 rs485" {
		t.Errorf("String() = %q", s)
	}
}

func TestDialAddress(t *testing.T) {
	tests := []struct{ in, want string }{
		{"tcp://10.0.0.21:502", "10.0.0.21:502"},
		{"tcp://10.0.0.21", "10.0.0.21:502"},
		{"tcp://plc.local:1502/", "plc.local:1502"},
		{"tcp://[::1]:5020", "[::1]:5020"},
		{"tcp://[::1]", "[::1]:502"},
	}
	for _, tc := range tests {
		got, err := dialAddress(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
