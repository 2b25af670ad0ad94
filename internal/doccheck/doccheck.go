// Package doccheck checks the repository's Markdown files: every relative
// link must name a file that exists, and every #anchor a heading of its
// target, as GitHub slugs headings. The READMEs beside the code link to one
// another; this keeps a moved section or a renamed heading from leaving a
// dead link behind.
package doccheck

import (
	"bytes"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/text"
)

// Problem is one link that does not resolve.
type Problem struct {
	File   string // relative to the root, slash-separated
	Line   int
	Link   string
	Reason string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Link, p.Reason)
}

// skipDir names folders that hold no documentation of this repository:
// installed npm packages, build outputs, version control.
func skipDir(name string) bool {
	return name == "node_modules" || name == "bin" || name == "dist" || strings.HasPrefix(name, ".")
}

// Check reads every *.md file under root and returns the links that do not
// resolve, in file order.
func Check(root string) ([]Problem, error) {
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".md") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	docs := make(map[string]*doc, len(files))
	for _, f := range files {
		d, err := parse(f)
		if err != nil {
			return nil, err
		}
		docs[f] = d
	}
	var problems []Problem
	for _, f := range files {
		rel, _ := filepath.Rel(root, f)
		for _, l := range docs[f].links {
			if reason := resolve(f, l.dest, docs); reason != "" {
				problems = append(problems, Problem{File: filepath.ToSlash(rel), Line: l.line, Link: l.dest, Reason: reason})
			}
		}
	}
	return problems, nil
}

type link struct {
	dest string
	line int
}

type doc struct {
	anchors map[string]bool
	links   []link
}

var markdown = goldmark.New(goldmark.WithExtensions(extension.GFM))

func parse(path string) (*doc, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := &doc{anchors: make(map[string]bool)}
	seen := make(map[string]int)
	root := markdown.Parser().Parse(text.NewReader(src))
	err = ast.Walk(root, func(n ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch n := n.(type) {
		case *ast.Heading:
			// GitHub numbers repeated headings: x, x-1, x-2 ...
			s := Slug(plainText(n, src))
			if k := seen[s]; k > 0 {
				d.anchors[fmt.Sprintf("%s-%d", s, k)] = true
			} else {
				d.anchors[s] = true
			}
			seen[s]++
		case *ast.Link:
			d.links = append(d.links, link{string(n.Destination), lineOf(src, n, n.Destination)})
		case *ast.Image:
			d.links = append(d.links, link{string(n.Destination), lineOf(src, n, n.Destination)})
		}
		return ast.WalkContinue, nil
	})
	return d, err
}

// plainText is a heading's text as GitHub renders it: code spans, links
// and emphasis reduced to their text.
func plainText(n ast.Node, src []byte) string {
	var b strings.Builder
	_ = ast.Walk(n, func(c ast.Node, entering bool) (ast.WalkStatus, error) {
		if !entering {
			return ast.WalkContinue, nil
		}
		switch c := c.(type) {
		case *ast.Text:
			b.Write(c.Value(src))
		case *ast.String:
			b.Write(c.Value)
		}
		return ast.WalkContinue, nil
	})
	return b.String()
}

// lineOf is the 1-based line of a link: its inline node's position when
// goldmark knows it, else the first place its destination is written.
func lineOf(src []byte, n ast.Node, dest []byte) int {
	at := n.Pos()
	if at < 0 || at > len(src) {
		at = max(bytes.Index(src, append([]byte("]("), dest...)), 0)
	}
	return bytes.Count(src[:at], []byte("\n")) + 1
}

// Slug returns the anchor GitHub gives a heading: lower case, spaces to
// hyphens, punctuation and symbols dropped (letters, digits, marks, "-"
// and "_" kept).
func Slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// resolve returns why dest, written in file, does not resolve, or "".
func resolve(file, dest string, docs map[string]*doc) string {
	u, err := url.Parse(dest)
	if err != nil {
		return "not a URL: " + err.Error()
	}
	if u.Scheme != "" || u.Host != "" {
		return "" // absolute: not checked here
	}
	target := file
	if u.Path != "" {
		if strings.HasPrefix(u.Path, "/") {
			return "absolute path: write it relative to the file"
		}
		target = filepath.Join(filepath.Dir(file), filepath.FromSlash(u.Path))
		if _, err := os.Stat(target); err != nil {
			return "no such file"
		}
	}
	if u.Fragment == "" {
		return ""
	}
	d, ok := docs[target]
	if !ok {
		return "an anchor in a file that is not Markdown"
	}
	if !d.anchors[u.Fragment] {
		return fmt.Sprintf("no heading with anchor #%s in %s (it has %s)", u.Fragment, filepath.Base(target), nearest(u.Fragment, d.anchors))
	}
	return ""
}

// nearest lists the target's anchors that share the missing one's first
// word, to make the fix obvious; all of them when none does.
func nearest(want string, anchors map[string]bool) string {
	first, _, _ := strings.Cut(want, "-")
	var near, all []string
	for a := range anchors {
		all = append(all, "#"+a)
		if strings.HasPrefix(a, first) {
			near = append(near, "#"+a)
		}
	}
	if len(near) == 0 {
		near = all
	}
	slices.Sort(near)
	if len(near) > 8 {
		near = append(near[:8], "...")
	}
	return strings.Join(near, " ")
}
