package main

import (
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/linegate/linegate/cmd/internal/tagimport"
	"github.com/linegate/linegate/drivers/opcua"
)

// browseYAML collects the variables a browse finds and prints them as a
// device block to paste under devices:.
type browseYAML struct {
	endpoint string
	conn     *opcuaConn
	filter   string // glob on the browse path or the browse name; "" = all
	name     string // device name; default from the start node
	start    string
	tags     []tagimport.Tag
	names    map[string]int
}

// checkFilter refuses a glob path.Match cannot use, before connecting.
func checkFilter(glob string) error {
	if glob == "" {
		return nil
	}
	if _, err := path.Match(glob, ""); err != nil {
		return usageError(fmt.Errorf("--filter %q: %v", glob, err))
	}
	return nil
}

// add keeps r when it is a variable that passes the filter.
func (b *browseYAML) add(r opcua.Ref) {
	if r.NodeClass != "Variable" {
		return
	}
	if b.filter != "" {
		_, name, _ := strings.Cut(r.BrowseName, ":")
		okPath, _ := path.Match(b.filter, r.Path)
		okName, _ := path.Match(b.filter, name)
		if !okPath && !okName {
			return
		}
	}
	if b.names == nil {
		b.names = map[string]int{}
	}
	n := tagimport.TagName(r.Path)
	if n == "" {
		n = "tag"
	}
	b.names[n]++
	if c := b.names[n]; c > 1 {
		n += "_" + strconv.Itoa(c)
	}
	b.tags = append(b.tags, tagimport.Tag{Name: n, Class: "process", Node: r.NodeID, Comment: r.Path, Bit: -1})
}

// write prints the block.
func (b *browseYAML) write(w io.Writer) error {
	if len(b.tags) == 0 {
		return &exitError{exitFailed, fmt.Errorf("no variable below %s matched (raise --depth, or check --filter)", b.startName())}
	}
	name := b.name
	if name == "" {
		name = tagimport.TagName(b.startName())
	}
	if name == "" {
		name = "device1"
	}
	res := &tagimport.Result{Format: "browse", Driver: "opcua", Tags: b.tags}
	block := string(res.YAML(tagimport.Device{Name: name, Endpoint: b.endpoint}))
	if b.conn.policy != "" && b.conn.policy != "None" {
		block = strings.Replace(block, "    tags:\n", "    security_policy: "+b.conn.policy+"\n    tags:\n", 1)
	}
	_, err := fmt.Fprint(w, "devices:\n"+block)
	return err
}

// startName is the last element of the start node, for the device name.
func (b *browseYAML) startName() string {
	s := b.start
	if s == "" {
		return "Objects"
	}
	if i := strings.LastIndexAny(s, "/.="); i >= 0 && i+1 < len(s) {
		s = s[i+1:]
	}
	return strings.Trim(s, `"`)
}
