package tagimport

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseSamples(t *testing.T) {
	tests := []struct {
		file, format string
		driver       string
		tags         []string // YAML lines (substrings) expected in the block
		skipped      []string // "line: reason substring"
	}{
		{"kepware.csv", Kepware, "modbus", []string{
			`{name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}   # Die temperature`,
			`{name: speed, class: process, register: input, address: 4, type: int16, scale: 0.1, unit: rpm}`,
			`{name: good_parts, class: process, register: holding, address: 12, type: uint32}`,
			`{name: door_open, class: equipment, register: discrete, address: 3, type: bool}`,
			`{name: cycle_time, class: time, register: holding, address: 14, type: uint16, unit: ms}`,
			`byte_order: CDAB`,
		}, []string{`8: data type "String" is not mapped`, `9: data type "BCD" is not mapped`}},
		{"generic.csv", Generic, "modbus", []string{
			`{name: temperature, class: process, register: holding, address: 0, type: float32, unit: degC}`,
			`{name: pressure, class: process, register: holding, address: 22, type: float32, unit: bar}`,
		}, []string{`5: a bool in a holding register needs a bit`, `9: address "70000": want 0..65535`}},
		{"tia.csv", TIA, "opcua", []string{
			`{name: motor_speed, class: process, node: "ns=3;s=\"Motor_Speed\""}   # Spindle speed`,
			`{name: motor_running, class: equipment, node: "ns=3;s=\"Motor_Running\""}`,
			`{name: cycle_time, class: time, node: "ns=3;s=\"Cycle_Time\""}`,
		}, []string{`5: Internal_Step is not HMI accessible`, `6: Recipe_Data: data type "\"UDT_Recipe\"" is not mapped`}},
		{"studio5000.csv", Studio5000, "opcua", []string{
			`{name: line_speed, class: process, node: "ns=2;s=Line_Speed"}   # Conveyor speed`,
			`{name: main_program_batch_count, class: process, node: "ns=2;s=Program:MainProgram.Batch_Count"}   # Batches today`,
		}, []string{`11: Recipe: data type "UDT_Recipe"`, `12: Temps: data type "REAL[10]"`, `13: Speed_Alias is an alias of Line_Speed`, `14: a comment on Line_Speed`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			res, err := Parse(f, "", Options{})
			if err != nil {
				t.Fatal(err)
			}
			if res.Format != tt.format || res.Driver != tt.driver {
				t.Fatalf("format %s driver %s, want %s %s", res.Format, res.Driver, tt.format, tt.driver)
			}
			out := string(res.YAML(Device{Name: "d1", Address: "tcp://127.0.0.1:502", UnitID: 1, Endpoint: "opc.tcp://127.0.0.1:4840"}))
			for _, want := range tt.tags {
				if !strings.Contains(out, want) {
					t.Errorf("block lacks %s\n%s", want, out)
				}
			}
			var got []string
			for _, s := range res.Skipped {
				got = append(got, strings.Join([]string{strconv.Itoa(s.Line), s.Reason}, ": "))
			}
			if len(got) != len(tt.skipped) {
				t.Errorf("skipped %d rows, want %d:\n%s", len(got), len(tt.skipped), strings.Join(got, "\n"))
			}
			for i := range min(len(got), len(tt.skipped)) {
				if !strings.HasPrefix(got[i], tt.skipped[i]) {
					t.Errorf("skipped row %d:\n got %s\nwant %s…", i, got[i], tt.skipped[i])
				}
			}
		})
	}
}

func TestParseModicon(t *testing.T) {
	tests := []struct {
		in      string
		reg     string
		addr    int
		bit     int
		wantErr bool
	}{
		{"40001", "holding", 0, -1, false},
		{"400001", "holding", 0, -1, false},
		{"465536", "holding", 65535, -1, false},
		{"30005", "input", 4, -1, false},
		{"00001", "coil", 0, -1, false},
		{"100004", "discrete", 3, -1, false},
		{"40061.3", "holding", 60, 3, false},
		{"40000", "", 0, 0, true},
		{"20001", "", 0, 0, true},
		{"4001", "", 0, 0, true},
		{"00001.2", "", 0, 0, true},
		{"40001.16", "", 0, 0, true},
	}
	for _, tt := range tests {
		reg, addr, bit, err := parseModicon(tt.in)
		if (err != nil) != tt.wantErr || !tt.wantErr && (reg != tt.reg || addr != tt.addr || bit != tt.bit) {
			t.Errorf("%s: %s %d %d %v", tt.in, reg, addr, bit, err)
		}
	}
}

func TestSemicolonsAndLatin1(t *testing.T) {
	src := "name;address;register;type;unit\ntemperature;0;holding;float32;\xb0C\n"
	res, err := Parse(strings.NewReader(src), Generic, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tags) != 1 || res.Tags[0].Unit != "°C" {
		t.Fatalf("%+v", res)
	}
}

func TestTagName(t *testing.T) {
	for in, want := range map[string]string{
		"Motor Speed": "motor_speed", "GoodParts": "good_parts", "DB1.Temp[2]": "db1_temp_2",
		"Motor_Running": "motor_running", "PLC_ID": "plc_id", "  ": "", "Überlast": "ueberlast", "Türöffner": "tueroeffner", "x-1": "x-1",
	} {
		if got := TagName(in); got != want {
			t.Errorf("TagName(%q) = %q, want %q", in, got, want)
		}
	}
}
