package configs

import (
	"bytes"
	"regexp"

	"go.yaml.in/yaml/v3"
)

// deviceParts is a config file cut into the sections (head: the file with
// the device items blanked out, so that every line keeps its number) and
// the text of each device item, parsed one at a time (see Parse).
type deviceParts struct {
	lines   [][]byte // the file's lines, without "\n"
	head    []byte
	keyLine int      // 1-based line of "devices:"
	indent  int      // column of the items' "-"
	items   [][2]int // each item's lines [from, to), 0-based
}

var devicesKey = regexp.MustCompile(`^devices:[ \t]*(#.*)?\r?$`)

// splitDevices cuts data when its devices are a block list under a plain
// top-level "devices:" key; ok is false for anything else, which is then
// parsed whole. It only decides where items begin; a cut that YAML would
// not make (inside a quoted or flow value) leaves a part that does not parse
// alone, and parseParts falls back.
func splitDevices(data []byte) (*deviceParts, bool) {
	if !plainLines(data) {
		return nil, false
	}
	p := &deviceParts{lines: bytes.Split(data, []byte("\n")), keyLine: -1, indent: -1}
	end := len(p.lines)
	for i, l := range p.lines {
		switch {
		case bytes.HasPrefix(l, []byte("---")) || bytes.HasPrefix(l, []byte("...")) || bytes.HasPrefix(l, []byte("%")):
			return nil, false // documents and directives: parse whole
		case devicesKey.Match(l):
			if p.keyLine >= 0 {
				return nil, false // a second devices: key, an error YAML reports
			}
			p.keyLine = i + 1
		case p.keyLine >= 0 && i >= p.keyLine && end == len(p.lines):
			if p.inBlock(l) {
				continue
			}
			end = i
		}
	}
	if p.keyLine < 0 {
		return nil, false
	}
	for i := p.keyLine; i < end; i++ {
		l := p.lines[i]
		ind, rest := indentOf(l)
		if len(rest) == 0 || rest[0] == '#' {
			continue // blank or comment: belongs to the item around it
		}
		if p.indent < 0 {
			p.indent = ind
		}
		switch {
		case ind == p.indent && isItemStart(rest):
			if n := len(p.items); n > 0 {
				p.items[n-1][1] = i
			}
			p.items = append(p.items, [2]int{i, end})
		case ind > p.indent && len(p.items) > 0:
			// inside the current item
		default:
			return nil, false // not a block list of items
		}
	}
	if len(p.items) == 0 {
		return nil, false
	}
	var head bytes.Buffer
	head.Grow(len(data))
	for i, l := range p.lines {
		if i > 0 {
			head.WriteByte('\n')
		}
		if i < p.items[0][0] || i >= end {
			head.Write(l)
		}
	}
	p.head = head.Bytes()
	return p, true
}

// plainLines says whether YAML sees the same lines as a split on "\n":
// YAML also breaks lines at a lone "\r", NEL, LS and PS, and reads a file
// that starts with a UTF-16 byte order mark as UTF-16. A value cut off by
// such a break would be parsed alone in a different context than in the
// file (a fuzzed file showed it), so these files are parsed whole.
func plainLines(data []byte) bool {
	if bytes.HasPrefix(data, []byte{0xfe, 0xff}) || bytes.HasPrefix(data, []byte{0xff, 0xfe}) {
		return false
	}
	for rest := data; ; {
		i := bytes.IndexByte(rest, '\r')
		if i < 0 {
			break
		}
		if i+1 == len(rest) || rest[i+1] != '\n' {
			return false
		}
		rest = rest[i+2:]
	}
	return !bytes.Contains(data, []byte("\u0085")) && !bytes.Contains(data, []byte("\u2028")) && !bytes.Contains(data, []byte("\u2029"))
}

// inBlock says whether line, after "devices:", still belongs to the
// devices block: blank lines, comments, indented lines and, for a list
// written at the key's own indentation, lines starting with "- ".
func (p *deviceParts) inBlock(l []byte) bool {
	ind, rest := indentOf(l)
	return len(rest) == 0 || rest[0] == '#' || ind > 0 || isItemStart(rest)
}

func indentOf(l []byte) (int, []byte) {
	rest := bytes.TrimLeft(l, " ")
	ind := len(l) - len(rest)
	return ind, bytes.TrimRight(rest, " \t\r")
}

func isItemStart(rest []byte) bool {
	return rest[0] == '-' && (len(rest) == 1 || rest[1] == ' ' || rest[1] == '\t')
}

// attach finds the empty devices value that the blanked items left in the
// head's tree and puts an empty block sequence in its place, which
// decodeConfig fills; ok is false when the head does not look as expected.
func (p *deviceParts) attach(root *yaml.Node) (*yaml.Node, bool) {
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value != "devices" || k.Line != p.keyLine {
			continue
		}
		if v.Kind != yaml.ScalarNode || v.Tag != "!!null" || v.Value != "" {
			return nil, false
		}
		seq := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: p.items[0][0] + 1, Column: p.indent + 1}
		root.Content[i+1] = seq
		return seq, true
	}
	return nil, false
}

// item parses device item i alone. Blank lines before it keep its line
// numbers; its indentation is kept, so columns are right too.
func (p *deviceParts) item(i int) (*yaml.Node, bool) {
	from, to := p.items[i][0], p.items[i][1]
	var b bytes.Buffer
	b.Write(bytes.Repeat([]byte("\n"), from))
	for _, l := range p.lines[from:to] {
		b.Write(l)
		b.WriteByte('\n')
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b.Bytes(), &doc); err != nil {
		return nil, false
	}
	if len(doc.Content) != 1 {
		return nil, false
	}
	seq := doc.Content[0]
	if seq.Kind != yaml.SequenceNode || seq.Style&yaml.FlowStyle != 0 || len(seq.Content) != 1 {
		return nil, false
	}
	return seq.Content[0], true
}
