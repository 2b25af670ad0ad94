package opcua

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"

	"github.com/linegate/linegate/drivers/sim"
)

// TestMeasureMonitoredItems measures how many monitored-item changes per
// second one subscription delivers: N variables of the simulated oven that
// all change every 100 ms tick, a 100 ms publishing and sampling interval.
// The figure is logged (go test -v -run MeasureMonitored); the test fails
// only if nearly nothing arrives. It is a measurement, not a check of
// behaviour, so it runs only when LINEGATE_OPCUA_MEASURE_ITEMS sets N: on
// a CI machine busy with other packages its figure means nothing.
func TestMeasureMonitoredItems(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("LINEGATE_OPCUA_MEASURE_ITEMS"))
	if err != nil || n <= 0 {
		t.Skip("a measurement: set LINEGATE_OPCUA_MEASURE_ITEMS=N (e.g. 1000) to run it")
	}
	o := startOven(t, sim.OvenOptions{LoadVariables: n, Tick: 100 * time.Millisecond})
	tags := make([]Tag, n)
	for i := range tags {
		tags[i] = Tag{Name: fmt.Sprint("load", i), Node: o.NodeID(fmt.Sprint("Load.", i))}
	}
	d := newDriver(t, Config{Endpoint: o.Endpoint(), Tags: tags, Interval: 100 * time.Millisecond, SamplingInterval: 100 * time.Millisecond})
	r := subscribe(t, d)
	testkit.WaitFor(t, 30*time.Second, "every item's first value", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.last) == n
	})
	start, before := time.Now(), r.total()
	time.Sleep(3 * time.Second) // the measuring window, not synchronisation
	rate := float64(r.total()-before) / time.Since(start).Seconds()
	t.Logf("monitored items: %d items, 100ms publishing/sampling: %.0f changes/s delivered (ideal %d/s)", n, rate, n*10)
	if rate < float64(n)/10 {
		t.Errorf("only %.0f changes/s", rate)
	}
}
