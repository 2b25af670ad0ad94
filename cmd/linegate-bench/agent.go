package main

import (
	"github.com/linegate/linegate/cmd/internal/agent"

	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

var httpClient = &http.Client{Timeout: 2 * time.Second}

// fetchAgentStatus reads the agent's /status.
func fetchAgentStatus(addr string) (agent.Status, error) {
	var st agent.Status
	resp, err := agentGet(addr, "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// agentGet fetches path from the agent's HTTP endpoint; a status other than
// 200 is an error.
func agentGet(addr, path string) (*http.Response, error) {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return nil, fmt.Errorf("%s: %s", path, resp.Status)
	}
	return resp, nil
}

// overruns counts the polls that did not fit their interval, on all devices.
func overruns(st agent.Status) uint64 {
	var n uint64
	for _, d := range st.Devices {
		n += d.Overruns
	}
	return n
}

// devicesUp counts the devices that are up.
func devicesUp(st agent.Status) int {
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

// commitTimes counts the agent's group commits (linegate_buffer_commit_seconds)
// and the slow ones: a slow fsync holds back every message of its commit,
// which is what a latency tail on a VM's disk usually is.
type commitTimes struct {
	Count    int64 `json:"count"`
	Over32ms int64 `json:"over_32ms"`
	Over64ms int64 `json:"over_64ms"`
}

func (c commitTimes) sub(d commitTimes) commitTimes {
	return commitTimes{c.Count - d.Count, c.Over32ms - d.Over32ms, c.Over64ms - d.Over64ms}
}

// fetchCommitTimes reads the commit histogram from the agent's /metrics.
func fetchCommitTimes(addr string) (commitTimes, error) {
	var c commitTimes
	resp, err := agentGet(addr, "/metrics")
	if err != nil {
		return c, err
	}
	defer resp.Body.Close()
	var le32, le64 int64
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		n, err := strconv.ParseFloat(val, 64)
		if err != nil {
			continue
		}
		switch name {
		case "linegate_buffer_commit_seconds_count":
			c.Count = int64(n)
		case `linegate_buffer_commit_seconds_bucket{le="0.032"}`:
			le32 = int64(n)
		case `linegate_buffer_commit_seconds_bucket{le="0.064"}`:
			le64 = int64(n)
		}
	}
	c.Over32ms, c.Over64ms = c.Count-le32, c.Count-le64
	return c, sc.Err()
}
