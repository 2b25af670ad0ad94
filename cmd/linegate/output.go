package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// Output helpers shared by the diagnostic commands.

// isTerminal tells whether w is a character device (a console), where a
// live view may redraw in place and a confirmation may be asked.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// The null device is a character device too, but nobody reads it.
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}

// writeJSON prints v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// liveView redraws a block of lines in place on a terminal (cursor up and
// clear line, plain ANSI that Windows 10+ consoles understand too), and
// appends them unchanged otherwise, so that a pipe gets plain lines.
type liveView struct {
	w     io.Writer
	tty   bool
	drawn int // lines on screen from the last frame
}

func newLiveView(w io.Writer) *liveView { return &liveView{w: w, tty: isTerminal(w)} }

func (v *liveView) frame(lines []string) {
	var b strings.Builder
	if v.tty && v.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", v.drawn)
	}
	for _, l := range lines {
		if v.tty {
			b.WriteString("\x1b[2K")
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	if v.tty {
		// A shorter frame than the last: clear what is left below.
		for i := len(lines); i < v.drawn; i++ {
			b.WriteString("\x1b[2K\n")
		}
		if extra := v.drawn - len(lines); extra > 0 {
			fmt.Fprintf(&b, "\x1b[%dA", extra)
		}
	}
	v.drawn = len(lines)
	io.WriteString(v.w, b.String())
}

// parseRanges parses "1-10,17,20-22" into sorted inclusive ranges within
// lo..hi.
func parseRanges(s string, lo, hi int) ([][2]int, error) {
	var out [][2]int
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		a, b, isRange := strings.Cut(part, "-")
		from, err := strconv.Atoi(strings.TrimSpace(a))
		to := from
		if err == nil && isRange {
			to, err = strconv.Atoi(strings.TrimSpace(b))
		}
		if err != nil {
			return nil, fmt.Errorf("%q: want N or N-M", part)
		}
		if from < lo || to > hi || from > to {
			return nil, fmt.Errorf("%q: want numbers within %d..%d, low to high", part, lo, hi)
		}
		out = append(out, [2]int{from, to})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q: empty", s)
	}
	return out, nil
}

// formatRanges writes sorted numbers as "1-3, 7".
func formatRanges(nums []int) string {
	var parts []string
	for i := 0; i < len(nums); {
		j := i
		for j+1 < len(nums) && nums[j+1] == nums[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, fmt.Sprint(nums[i]))
		} else {
			parts = append(parts, fmt.Sprintf("%d-%d", nums[i], nums[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// optTime is t in UTC for a JSON document, nil (left out) when zero.
func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}
