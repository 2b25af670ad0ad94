package doccheck

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestRepositoryLinks is the check itself: every relative link and anchor
// in every Markdown file of the repository resolves.
func TestRepositoryLinks(t *testing.T) {
	problems, err := Check(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func TestSlug(t *testing.T) {
	for _, tc := range []struct{ heading, want string }{
		{"Install", "install"},
		{"Store and forward (delivery guarantees)", "store-and-forward-delivery-guarantees"},
		{"Diagnostics: the technician's toolbox", "diagnostics-the-technicians-toolbox"},
		{"linegate buffer stats|peek|export|compact|drop", "linegate-buffer-statspeekexportcompactdrop"},
		{"Release builds: make dist", "release-builds-make-dist"},
		{"Local HTTP endpoint (http.listen, default 127.0.0.1:9870; \"\" disables it)", "local-http-endpoint-httplisten-default-1270019870--disables-it"},
		{"devices: normalization (any driver)", "devices-normalization-any-driver"},
		{"Sparkplug B (Ignition, HiveMQ, Cirrus Link)", "sparkplug-b-ignition-hivemq-cirrus-link"},
		{"snake_case and Ünïcode", "snake_case-and-ünïcode"},
		{"1366×768 screens", "1366768-screens"},
	} {
		if got := Slug(tc.heading); got != tc.want {
			t.Errorf("Slug(%q) = %q, want %q", tc.heading, got, tc.want)
		}
	}
}

// TestCheckFindsBrokenLinks runs Check on a small tree with one link of
// each kind, good and broken.
func TestCheckFindsBrokenLinks(t *testing.T) {
	root := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n\n"+
		"[ok](sub/README.md) [ok](sub/README.md#the-part-two) [ok](#top) [ok](#top-1) [ok](https://example.com/x#y)\n\n"+
		"[gone](sub/missing.md)\n\n"+
		"[bad anchor](sub/README.md#the-part)\n\n"+
		"[self](#nowhere)\n\n"+
		"![img](sub/pic.png) `[not a link](nowhere.md)`\n\n"+
		"```\n[in a fence](nowhere.md)\n```\n\n"+
		"## Top\n")
	write("sub/README.md", "# Sub\n\n## The `part` two\n\n[up](../README.md#top) [code](main.go#L1)\n")
	write("sub/main.go", "package main\n")
	write("node_modules/x/README.md", "[ignored](nowhere.md)\n")

	problems, err := Check(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range problems {
		got = append(got, p.File+" "+p.Link)
	}
	want := []string{
		"README.md sub/missing.md",
		"README.md sub/README.md#the-part",
		"README.md #nowhere",
		"README.md sub/pic.png",
		"sub/README.md main.go#L1",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n%v\nwant:\n%v", problems, want)
	}
	if len(problems) > 0 && problems[0].Line != 5 {
		t.Errorf("line of %s = %d, want 5", problems[0].Link, problems[0].Line)
	}
}
