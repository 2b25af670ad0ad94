package configs

import (
	"strings"
	"testing"
)

func TestOverlappingTagsWarn(t *testing.T) {
	head := strings.TrimSuffix(base, "      - {name: temp, class: process, register: holding, address: 0, type: float32}\n")
	tests := []struct {
		name, tags string
		want       string // "" = no warning
	}{
		{"float32 and the word inside it", `      - {name: temp, class: process, register: holding, address: 0, type: float32}
      - {name: speed, class: process, register: holding, address: 1, type: uint16}
`, `linegate.yaml:10: device press01, tag speed: holding 1 overlaps tag temp (holding 0..1, line 9): both read holding 1`},
		{"same coil twice", `      - {name: a, class: equipment, register: coil, address: 3, type: bool}
      - {name: b, class: equipment, register: coil, address: 3, type: bool}
`, `tag b: coil 3 overlaps tag a (coil 3, line 9)`},
		{"same bit twice", `      - {name: a, class: equipment, register: holding, address: 60, bit: 3, type: bool}
      - {name: b, class: equipment, register: holding, address: 60, bit: 3, type: bool}
`, `tag b: holding 60 bit 3 overlaps tag a (holding 60 bit 3, line 9)`},
		{"different bits", `      - {name: a, class: equipment, register: holding, address: 60, bit: 3, type: bool}
      - {name: b, class: equipment, register: holding, address: 60, bit: 4, type: bool}
`, ""},
		{"a word and a bit of it", `      - {name: alarms, class: equipment, register: holding, address: 60, type: uint16}
      - {name: estop, class: equipment, register: holding, address: 60, bit: 3, type: bool}
`, ""},
		{"adjacent", `      - {name: a, class: process, register: holding, address: 0, type: float32}
      - {name: b, class: process, register: holding, address: 2, type: float32}
`, ""},
		{"same number, other table", `      - {name: a, class: process, register: holding, address: 0, type: uint16}
      - {name: b, class: process, register: input, address: 0, type: uint16}
`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Parse("linegate.yaml", []byte(head+tt.tags), env(nil))
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Join(cfg.Warnings, "\n")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
				t.Errorf("warnings:\n%s\nwant: %q", got, tt.want)
			}
		})
	}
}
