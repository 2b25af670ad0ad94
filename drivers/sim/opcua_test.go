package sim

import (
	"context"
	"testing"
	"time"

	"github.com/gopcua/opcua"
	"github.com/gopcua/opcua/ua"
)

func readOven(t *testing.T, endpoint string, names ...string) []*ua.DataValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := opcua.NewClient(endpoint, opcua.AutoReconnect(false))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Connect(ctx); err != nil {
		t.Fatalf("connect %s: %v", endpoint, err)
	}
	defer c.Close(ctx)
	req := &ua.ReadRequest{TimestampsToReturn: ua.TimestampsToReturnBoth}
	for _, n := range names {
		req.NodesToRead = append(req.NodesToRead, &ua.ReadValueID{NodeID: ua.MustParseNodeID("ns=1;s=Oven01." + n), AttributeID: ua.AttributeIDValue})
	}
	res, err := c.Read(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	return res.Results
}

func TestOvenValues(t *testing.T) {
	o := NewOven(OvenOptions{})
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	if o.NodeID("Parts") != "ns=1;s=Oven01.Parts" {
		t.Errorf("NodeID %s", o.NodeID("Parts"))
	}
	cases := []struct {
		name   string
		typ    ua.TypeID
		status ua.StatusCode
	}{
		{"Zone1.Temperature", ua.TypeIDDouble, ua.StatusOK},
		{"Setpoint", ua.TypeIDFloat, ua.StatusOK},
		{"State", ua.TypeIDInt32, ua.StatusOK},
		{"Heater", ua.TypeIDBoolean, ua.StatusOK},
		{"Parts", ua.TypeIDUint32, ua.StatusOK},
		{"Recipe", ua.TypeIDString, ua.StatusOK},
		{"LastCycle", ua.TypeIDDateTime, ua.StatusOK},
		{"CycleTime", ua.TypeIDUint16, ua.StatusOK},
		{"ZoneTemperatures", ua.TypeIDDouble, ua.StatusOK},
		{"Mode", ua.TypeIDLocalizedText, ua.StatusOK},
		{"Draft", ua.TypeIDInt16, ua.StatusOK},
		{"AlarmCode", ua.TypeIDByte, ua.StatusOK},
		{"Trim", ua.TypeIDSByte, ua.StatusOK},
		{"Energy", ua.TypeIDInt64, ua.StatusOK},
		{"RunSeconds", ua.TypeIDUint64, ua.StatusOK},
		{"Humidity", ua.TypeIDDouble, ua.StatusUncertainLastUsableValue},
		{"Sensor4", 0, ua.StatusBadSensorFailure},
	}
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	res := readOven(t, o.Endpoint(), names...)
	for i, c := range cases {
		dv := res[i]
		var typ ua.TypeID
		if dv.Value != nil {
			typ = dv.Value.Type()
		}
		if dv.Status != c.status || typ != c.typ || (c.status == ua.StatusOK && dv.SourceTimestamp.IsZero()) {
			t.Errorf("%s: type %v status %v ts %v, want %v %v", c.name, typ, dv.Status, dv.SourceTimestamp, c.typ, c.status)
		}
	}
	if v := res[8].Value; v.ArrayLength() != 3 {
		t.Errorf("ZoneTemperatures: %v", v.Value())
	}
}

// TestOvenRestart: after Stop the endpoint refuses connections; Start
// serves again on the same endpoint.
func TestOvenRestart(t *testing.T) {
	o := NewOven(OvenOptions{Secure: true})
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer o.Stop()
	ep := o.Endpoint()
	if len(o.Certificate()) == 0 {
		t.Fatal("secure oven without a certificate")
	}
	readOven(t, ep, "Recipe")
	o.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := opcua.GetEndpoints(ctx, ep); err == nil {
		t.Fatal("stopped oven still answers")
	}
	if err := o.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if o.Endpoint() != ep {
		t.Fatalf("endpoint moved: %s -> %s", ep, o.Endpoint())
	}
	if got := readOven(t, ep, "Recipe")[0].Value.Value(); got != "PCB-4711" {
		t.Errorf("recipe %v", got)
	}
}
