package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// agentStatus is the part of linegate's /status the bench reads.
type agentStatus struct {
	Devices []struct {
		Name     string `json:"name"`
		Up       bool   `json:"up"`
		Overruns uint64 `json:"overruns"`
	} `json:"devices"`
	Buffer struct {
		Messages int64  `json:"messages"`
		NextSeq  uint64 `json:"next_seq"`
		Dropped  uint64 `json:"dropped"`
	} `json:"buffer"`
	Uplink struct {
		Connected bool   `json:"connected"`
		Published uint64 `json:"published"`
	} `json:"uplink"`
}

var httpClient = &http.Client{Timeout: 2 * time.Second}

func fetchAgentStatus(addr string) (agentStatus, error) {
	var st agentStatus
	resp, err := httpClient.Get("http://" + addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("/status: %s", resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

func (st agentStatus) overruns() uint64 {
	var n uint64
	for _, d := range st.Devices {
		n += d.Overruns
	}
	return n
}

func (st agentStatus) devicesUp() int {
	n := 0
	for _, d := range st.Devices {
		if d.Up {
			n++
		}
	}
	return n
}

// slope fits y = a + b·x by least squares and returns b.
func slope(xs, ys []float64) float64 {
	n := float64(len(xs))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
