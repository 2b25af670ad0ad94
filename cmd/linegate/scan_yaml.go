package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/linegate/linegate/cmd/internal/tagimport"
)

// scanYAMLMax bounds the raw tags scan --yaml writes per unit: a readable
// range of 10,000 registers is a map to narrow down, not a config.
const scanYAMLMax = 250

// printScanYAML prints one device block per unit that answered, with one
// raw tag per readable register or bit (uint16, bool), for the user to
// rename, type and scale.
func printScanYAML(w io.Writer, doc scanDoc, name string) error {
	if len(doc.Units) == 0 {
		return nil // the caller reports that no unit answered
	}
	fmt.Fprintln(w, "devices:")
	for _, u := range doc.Units {
		dev := tagimport.Device{Name: name, Address: doc.Device, UnitID: u.Unit}
		if len(doc.Units) > 1 {
			dev.Name = fmt.Sprintf("%s_u%d", name, u.Unit)
		}
		res := &tagimport.Result{Format: "scan", Driver: "modbus"}
		left := 0
		for _, t := range u.Tables {
			for _, r := range t.Ranges {
				for a := r[0]; a <= r[1]; a++ {
					if len(res.Tags) == scanYAMLMax {
						left++
						continue
					}
					tag := tagimport.Tag{Name: fmt.Sprintf("%s_%d", t.Table, a), Class: "process", Register: t.Table, Address: a, Bit: -1, Type: "uint16"}
					if t.Table == "coil" || t.Table == "discrete" {
						tag.Type, tag.Class = "bool", "equipment"
					}
					res.Tags = append(res.Tags, tag)
				}
			}
		}
		if len(res.Tags) == 0 {
			fmt.Fprintf(w, "  # unit %d answered, but no readable range was found in %d-%d\n", u.Unit, doc.Addresses[0], doc.Addresses[1])
			continue
		}
		block := string(res.YAML(dev))
		note := "  # raw words and bits: rename them, set type (float32 takes two words), scale and unit\n"
		if left > 0 {
			note += fmt.Sprintf("  # %d more readable address(es) left out (at most %d per unit): narrow --addresses\n", left, scanYAMLMax)
		}
		fmt.Fprint(w, strings.Replace(block, "\n", "\n"+note, 1))
	}
	return nil
}
