// Package tagimport reads the tag lists controls engineers already have —
// a generic CSV, a Siemens TIA Portal PLC tag table, a Rockwell Studio 5000
// tag export, a Kepware CSV export — into linegate tags, and reports every
// row it could not map, with its line. It never guesses: a row whose address
// or type it does not understand is reported, not imported.
package tagimport

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"unicode/utf8"
)

// Formats the package reads; "" asks Parse to detect the format.
const (
	Generic    = "csv"
	TIA        = "tia"
	Studio5000 = "studio5000"
	Kepware    = "kepware"
)

// Formats lists the formats, for flags and messages.
var Formats = []string{Generic, TIA, Studio5000, Kepware}

// Tag is one imported tag. Register/Address/Bit describe a Modbus tag,
// Node an OPC UA one; Driver says which.
type Tag struct {
	Line     int    // of the row in the file
	Name     string // linegate tag name
	Class    string // process | equipment | time
	Register string // holding | input | coil | discrete
	Address  int    // 0-based protocol address
	Bit      int    // -1: none
	Type     string // linegate type; "" for OPC UA (the server knows)
	Length   int    // registers, for strings
	Unit     string
	Scale    float64 // 0: none
	Offset   float64
	Node     string // OPC UA node id
	Comment  string
}

// Skipped is a row that was not imported, and why.
type Skipped struct {
	Line   int
	Reason string
}

// Result is what a file gave.
type Result struct {
	Format  string
	Driver  string // modbus | opcua
	Tags    []Tag
	Skipped []Skipped
}

func (r *Result) skip(line int, format string, args ...any) {
	r.Skipped = append(r.Skipped, Skipped{line, fmt.Sprintf(format, args...)})
}

// named starts the tag of row rw from the PLC's tag name: linegate's
// name for it (TagName), the PLC's own kept as the comment when it had to
// change, the row's description over both. ok false: no name, the row is
// skipped.
func (r *Result) named(rw row, name, description string) (t Tag, ok bool) {
	t = Tag{Line: rw.line, Bit: -1, Name: TagName(name)}
	if t.Name == "" {
		r.skip(rw.line, "no tag name")
		return t, false
	}
	if t.Name != name {
		t.Comment = name
	}
	if description != "" {
		t.Comment = description
	}
	return t, true
}

// Options tune the formats that name no protocol address.
type Options struct {
	// NodePrefix goes before a TIA or Studio 5000 tag name to make its OPC
	// UA node id. Default: TIA `ns=3;s=` (S7-1500 server, names quoted),
	// Studio 5000 `ns=2;s=`.
	NodePrefix string
}

// maxFileSize bounds what Parse reads: a tag list of 100,000 rows is a few
// megabytes.
const maxFileSize = 64 << 20

// Parse reads a tag list of format ("" = detect).
func Parse(r io.Reader, format string, opts Options) (*Result, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("the file is larger than %d MiB", maxFileSize>>20)
	}
	data = bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF")) // Excel's UTF-8 BOM
	if !utf8.Valid(data) {
		data = latin1ToUTF8(data) // Excel on Windows saves CSV in the ANSI code page
	}
	rows, err := readRows(data)
	if err != nil {
		return nil, err
	}
	if format == "" {
		format = Detect(rows)
		if format == "" {
			return nil, errors.New("format not recognized: name it with --format (" + strings.Join(Formats, ", ") + ")")
		}
	}
	res := &Result{Format: format}
	switch format {
	case Generic:
		res.Driver = "modbus"
		err = parseGeneric(rows, res)
	case TIA:
		res.Driver = "opcua"
		err = parseTIA(rows, res, opts)
	case Studio5000:
		res.Driver = "opcua"
		err = parseStudio5000(rows, res, opts)
	case Kepware:
		res.Driver = "modbus"
		err = parseKepware(rows, res)
	default:
		return nil, fmt.Errorf("format %q: want %s", format, strings.Join(Formats, ", "))
	}
	if err != nil {
		return nil, err
	}
	dedupe(res)
	return res, nil
}

// row is one CSV record and the line it starts on.
type row struct {
	line   int
	fields []string
}

// readRows splits CSV text, comma or semicolon separated (Excel in a
// German locale writes semicolons), keeping each record's line.
func readRows(data []byte) ([]row, error) {
	comma := ','
	first, _, _ := bytes.Cut(data, []byte("\n"))
	if bytes.Count(first, []byte(";")) > bytes.Count(first, []byte(",")) {
		comma = ';'
	} else if bytes.Count(first, []byte("\t")) > bytes.Count(first, []byte(",")) {
		comma = '\t'
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comma = comma
	cr.FieldsPerRecord = -1
	cr.LazyQuotes = true
	cr.ReuseRecord = false
	var rows []row
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, fmt.Errorf("line %d: %v", pe.StartLine, pe.Err)
			}
			return nil, err
		}
		for i := range rec {
			rec[i] = strings.TrimSpace(rec[i])
		}
		rows = append(rows, row{line: line, fields: rec})
	}
	return rows, nil
}

func latin1ToUTF8(b []byte) []byte {
	var out bytes.Buffer
	w := bufio.NewWriter(&out)
	for _, c := range b {
		w.WriteRune(rune(c))
	}
	w.Flush()
	return out.Bytes()
}

// header maps lower-cased column names to their index.
type header map[string]int

func newHeader(fields []string) header {
	h := header{}
	for i, f := range fields {
		k := strings.ToLower(strings.TrimSpace(f))
		if _, dup := h[k]; !dup {
			h[k] = i
		}
	}
	return h
}

// get is the field of the first column named, "" when none is there.
func (h header) get(r row, names ...string) string {
	for _, n := range names {
		if i, ok := h[n]; ok && i < len(r.fields) {
			return r.fields[i]
		}
	}
	return ""
}

func (h header) has(names ...string) bool {
	for _, n := range names {
		if _, ok := h[n]; !ok {
			return false
		}
	}
	return true
}

// Detect names the format of rows by their header, "" when unknown.
func Detect(rows []row) string {
	for i, r := range rows {
		if i > 20 {
			break
		}
		h := newHeader(r.fields)
		switch {
		case h.has("type", "scope", "name", "datatype"):
			return Studio5000
		case h.has("tag name", "address", "data type"):
			return Kepware
		case h.has("name", "data type", "logical address"):
			return TIA
		case h.has("name", "address"):
			return Generic
		}
	}
	return ""
}

// findHeader returns the header row's index for format, or an error.
func findHeader(rows []row, format string, need ...string) (int, header, error) {
	for i, r := range rows {
		if h := newHeader(r.fields); h.has(need...) {
			return i, h, nil
		}
		if i > 20 {
			break
		}
	}
	return 0, nil, fmt.Errorf("%s: no header row with the columns %s", format, strings.Join(need, ", "))
}

// dedupe reports a second tag of the same name: the config would refuse it.
func dedupe(res *Result) {
	seen := map[string]int{}
	kept := res.Tags[:0]
	for _, t := range res.Tags {
		if first, dup := seen[t.Name]; dup {
			res.skip(t.Line, "tag name %q again (first on line %d)", t.Name, first)
			continue
		}
		seen[t.Name] = t.Line
		kept = append(kept, t)
	}
	res.Tags = kept
	sortSkipped(res.Skipped)
}

func sortSkipped(s []Skipped) {
	sort.SliceStable(s, func(a, b int) bool { return s[a].Line < s[b].Line })
}

// TagName makes a PLC tag name a linegate tag name (an MQTT-safe word):
// "Motor Speed" → motor_speed, "GoodParts" → good_parts, "DB1.Temp[2]" →
// db1_temp_2. The caller keeps the original as a comment when it changed.
func TagName(s string) string {
	var b strings.Builder
	under := false
	lower := false // the previous rune was a lower-case letter or digit
	for _, r := range umlauts.Replace(strings.TrimSpace(s)) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-':
			b.WriteRune(r)
			under, lower = false, true
		case r >= 'A' && r <= 'Z':
			if lower {
				b.WriteByte('_')
			}
			b.WriteRune(r + ('a' - 'A'))
			under, lower = false, false
		default:
			if !under && b.Len() > 0 {
				b.WriteByte('_')
				under = true
			}
			lower = false
		}
	}
	return strings.Trim(b.String(), "_")
}

// umlauts are spelt out as in German technical names, not dropped.
var umlauts = strings.NewReplacer("ä", "ae", "ö", "oe", "ü", "ue", "Ä", "Ae", "Ö", "Oe", "Ü", "Ue", "ß", "ss")
