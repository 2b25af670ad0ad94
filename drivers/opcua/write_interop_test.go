package opcua

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/testdata/peers"
)

// TestInteropWrite writes node-opcua's nodes of several data types, by
// node id, browse path and namespace URI, checks the read-back and reads
// the server with node-opcua's own client; a value that does not fit the
// node's type is refused before anything is sent, and a node the server
// refuses gives its StatusCode.
func TestInteropWrite(t *testing.T) {
	peers.Interop(t)
	srv := peers.StartNodeOPCUA(t, peers.NodeOPCUAOptions{AutoAccept: true})
	tags := []Tag{
		{Name: "setpoint", Node: "ns=1;s=Quiet.Setpoint"},
		{Name: "mode", BrowsePath: "Objects/1:Line1/1:Quiet/1:Mode"},
		{Name: "batch", Node: "nsu=urn:linegate:plant;s=Plant.A"},
		{Name: "locked", Node: "ns=1;s=Quiet.Locked"},
		{Name: "text", Node: "ns=1;s=Quiet.Batch"},
	}
	d := newDriver(t, Config{Endpoint: srv.Endpoint, Tags: tags})
	ctx := context.Background()
	var refused *drivers.RefusedError
	if _, err := d.Write(ctx, 0, 1.0); !errors.As(err, &refused) || !strings.Contains(err.Error(), "not connected") {
		t.Errorf("write before any session: %v, want refused", err)
	}
	if err := d.Read(ctx, make([]drivers.Sample, len(tags))); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		index int
		value any
		back  any
	}{
		{0, 200.25, 200.25},
		{1, int64(7), int64(7)},
		{1, 8.0, int64(8)}, // a whole float for an Int32
		{2, int64(4), 4.0}, // an integer for a Double
		{4, "B-0816", "B-0816"},
	} {
		back, err := d.Write(ctx, tt.index, tt.value)
		if err != nil || back != tt.back {
			t.Errorf("%s = %v: read back %#v, %v; want %#v", tags[tt.index].Name, tt.value, back, err, tt.back)
		}
	}
	for _, tt := range []struct {
		index   int
		value   any
		refused bool
		want    string
	}{
		{1, 3.5, true, "does not fit Int32"},
		{1, "x", true, "does not fit Int32"},
		{4, 1.0, true, "a String node takes a string"},
		{3, 6.0, false, "BadNotWritable"},
	} {
		_, err := d.Write(ctx, tt.index, tt.value)
		var r *drivers.RefusedError
		if err == nil || errors.As(err, &r) != tt.refused || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s = %v: %v; want refused=%v with %q", tags[tt.index].Name, tt.value, err, tt.refused, tt.want)
		}
	}
	got := peers.OPCUARead(t, srv.Endpoint, "ns=1;s=Quiet.Setpoint", "ns=1;s=Quiet.Mode", "ns=1;s=Quiet.Locked", "ns=1;s=Quiet.Batch")
	for node, want := range map[string]any{"ns=1;s=Quiet.Setpoint": 200.25, "ns=1;s=Quiet.Mode": 8.0, "ns=1;s=Quiet.Locked": 5.0, "ns=1;s=Quiet.Batch": "B-0816"} {
		if got[node].Value != want {
			t.Errorf("%s on the server: %+v, want %v", node, got[node], want)
		}
	}
	if got["ns=1;s=Quiet.Mode"].Type != "Int32" {
		t.Errorf("Mode's type on the server: %s, want Int32 kept", got["ns=1;s=Quiet.Mode"].Type)
	}
}
