package main

import (
	"testing"
	"time"
)

func TestScanPayload(t *testing.T) {
	ms := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return ts
	}
	cases := []struct {
		name        string
		payload     string
		ok          bool
		seq         uint64
		hist        bool
		n           int
		ts, created time.Time
	}{
		{name: "live",
			payload: `{"schema":"linegate/v1","id":"gw:7","gateway":"gw","seq":7,"equipment":"press001","class":"process","ts":"2026-11-27T10:15:02.130Z","historical":false,` +
				`"readings":[{"tag":"t0","value":1,"quality":"good","ts":"2026-11-27T10:15:02.101Z"},{"tag":"t1","value":2,"quality":"good","ts":"2026-11-27T10:15:02.102Z"}]}`,
			ok: true, seq: 7, n: 2, ts: ms("2026-11-27T10:15:02.101Z"), created: ms("2026-11-27T10:15:02.130Z")},
		{name: "historical, no readings",
			payload: `{"seq":12,"ts":"2026-11-27T10:15:02.130Z","historical":true,"readings":[]}`,
			ok:      true, seq: 12, hist: true, created: ms("2026-11-27T10:15:02.130Z")},
		{name: "no seq", payload: `{"ts":"2026-11-27T10:15:02.130Z","readings":[]}`},
		{name: "seq 0", payload: `{"seq":0,"readings":[]}`},
		{name: "no readings", payload: `{"seq":3}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			seq, hist, n, ts, created, ok := scanPayload([]byte(tc.payload))
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if !ok {
				return
			}
			if seq != tc.seq || hist != tc.hist || n != tc.n || !ts.Equal(tc.ts) || !created.Equal(tc.created) {
				t.Fatalf("got seq %d hist %v n %d ts %v created %v, want %d %v %d %v %v",
					seq, hist, n, ts, created, tc.seq, tc.hist, tc.n, tc.ts, tc.created)
			}
		})
	}
}
