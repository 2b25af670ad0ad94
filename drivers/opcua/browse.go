package opcua

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/id"
	"github.com/gopcua/opcua/ua"
)

// pathElem is one browse name of a browse path; ns -1 matches any namespace.
type pathElem struct {
	ns   int
	name string
}

// parsePath parses "Objects/Line1/2:Press01/Temperature". The leading
// "Objects" is optional (paths start at the Objects folder); a name may
// carry its namespace index.
func parsePath(p string) ([]pathElem, error) {
	parts := strings.Split(strings.Trim(p, "/"), "/")
	if len(parts) > 0 && (parts[0] == "Objects" || parts[0] == "0:Objects") {
		parts = parts[1:]
	}
	if len(parts) == 0 || parts[0] == "" {
		return nil, fmt.Errorf("browse_path %q names no node below Objects", p)
	}
	out := make([]pathElem, len(parts))
	for i, s := range parts {
		e := pathElem{ns: -1, name: s}
		if n, rest, ok := strings.Cut(s, ":"); ok {
			if v, err := strconv.Atoi(n); err == nil && v >= 0 && v <= 65535 {
				e.ns, e.name = v, rest
			}
		}
		if e.name == "" {
			return nil, fmt.Errorf("browse_path %q has an empty element", p)
		}
		out[i] = e
	}
	return out, nil
}

func (e pathElem) String() string {
	if e.ns >= 0 {
		return fmt.Sprintf("%d:%s", e.ns, e.name)
	}
	return e.name
}

// Ref is one node found by browsing.
type Ref struct {
	NodeID      string `json:"node_id"`
	BrowseName  string `json:"browse_name"` // ns:Name
	DisplayName string `json:"display_name"`
	NodeClass   string `json:"node_class"`
	Path        string `json:"path"` // browse path from the start node
	Depth       int    `json:"depth"`

	id *ua.NodeID
}

// browser browses one session, remembering the children it has seen so
// that many paths through one folder cost one Browse.
type browser struct {
	c       *opcua.Client
	timeout func() (context.Context, context.CancelFunc)
	cache   map[string][]Ref
}

func (b *browser) children(ctx context.Context, n *ua.NodeID) ([]Ref, error) {
	key := n.String()
	if refs, ok := b.cache[key]; ok {
		return refs, nil
	}
	req := &ua.BrowseRequest{
		View:                          &ua.ViewDescription{ViewID: ua.NewTwoByteNodeID(0)},
		RequestedMaxReferencesPerNode: 0,
		NodesToBrowse: []*ua.BrowseDescription{{
			NodeID:          n,
			BrowseDirection: ua.BrowseDirectionForward,
			ReferenceTypeID: ua.NewNumericNodeID(0, id.HierarchicalReferences),
			IncludeSubtypes: true,
			NodeClassMask:   0,
			ResultMask:      uint32(ua.BrowseResultMaskAll),
		}},
	}
	rctx, cancel := b.timeout()
	res, err := b.c.Browse(rctx, req)
	cancel()
	if err != nil {
		return nil, err
	}
	if len(res.Results) != 1 {
		return nil, fmt.Errorf("browse %s: %d results for 1 node", n, len(res.Results))
	}
	r := res.Results[0]
	if quality(r.StatusCode) != 0 {
		return nil, StatusError{r.StatusCode}
	}
	var out []Ref
	for {
		for _, rd := range r.References {
			out = append(out, refOf(rd))
		}
		if len(r.ContinuationPoint) == 0 {
			break
		}
		rctx, cancel := b.timeout()
		next, err := b.c.BrowseNext(rctx, &ua.BrowseNextRequest{ContinuationPoints: [][]byte{r.ContinuationPoint}})
		cancel()
		if err != nil {
			return nil, err
		}
		if len(next.Results) != 1 {
			break
		}
		r = next.Results[0]
	}
	if b.cache != nil {
		b.cache[key] = out
	}
	return out, nil
}

func refOf(rd *ua.ReferenceDescription) Ref {
	r := Ref{NodeClass: strings.TrimPrefix(rd.NodeClass.String(), "NodeClass")}
	if rd.NodeID != nil && rd.NodeID.NodeID != nil {
		r.id = rd.NodeID.NodeID
		r.NodeID = r.id.String()
	}
	if rd.BrowseName != nil {
		r.BrowseName = fmt.Sprintf("%d:%s", rd.BrowseName.NamespaceIndex, rd.BrowseName.Name)
	}
	if rd.DisplayName != nil {
		r.DisplayName = rd.DisplayName.Text
	}
	return r
}

// resolve follows a browse path from the Objects folder.
func (b *browser) resolve(ctx context.Context, path []pathElem) (*ua.NodeID, error) {
	cur := ua.NewNumericNodeID(0, id.ObjectsFolder)
	where := "Objects"
	for _, e := range path {
		refs, err := b.children(ctx, cur)
		if err != nil {
			return nil, fmt.Errorf("browse %s: %w", where, err)
		}
		var next *ua.NodeID
		for _, r := range refs {
			ns, name, _ := strings.Cut(r.BrowseName, ":")
			if name == e.name && (e.ns < 0 || strconv.Itoa(e.ns) == ns) && r.id != nil {
				next = r.id
				break
			}
		}
		if next == nil {
			var names []string
			for _, r := range refs {
				names = append(names, r.BrowseName)
			}
			return nil, fmt.Errorf("no %q under %s (it holds %s)", e.String(), where, strings.Join(names, ", "))
		}
		cur, where = next, where+"/"+e.String()
	}
	return cur, nil
}

// walk browses from start down to depth levels (1 = the children only),
// depth first, so that the visits print as a tree.
func (b *browser) walk(ctx context.Context, start *ua.NodeID, depth int, visit func(Ref)) error {
	seen := map[string]bool{start.String(): true}
	var rec func(n *ua.NodeID, path string, level int) error
	rec = func(n *ua.NodeID, path string, level int) error {
		refs, err := b.children(ctx, n)
		if err != nil {
			return err
		}
		for _, r := range refs {
			_, name, _ := strings.Cut(r.BrowseName, ":")
			r.Path = strings.TrimPrefix(path+"/"+name, "/")
			r.Depth = level + 1
			visit(r)
			if r.id != nil && !seen[r.NodeID] && level+1 < depth {
				seen[r.NodeID] = true
				if err := rec(r.id, r.Path, level+1); err != nil && ctx.Err() != nil {
					return err
				}
			}
		}
		return nil
	}
	return rec(start, "", 0)
}
