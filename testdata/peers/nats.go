package peers

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// NATSServerPath is where Debian's nats-server package puts the server.
const NATSServerPath = "/usr/sbin/nats-server"

// natsStartTimeout covers the JetStream meta leader election of a cluster.
const natsStartTimeout = 30 * time.Second

// NATSNode is one nats-server of a NATSCluster, with JetStream and MQTT.
type NATSNode struct {
	Name     string // n1, n2, ...
	MQTTAddr string // 127.0.0.1:PORT
	MQTTURL  string // tcp://127.0.0.1:PORT
	Monitor  string // http://127.0.0.1:PORT (healthz, varz, jsz)
	LogPath  string
	p        *process
}

// NATSCluster is a cluster of nats-server nodes on loopback started for one
// test, each with its own ports and JetStream directory; never the
// machine's server on 4222. The test's cleanup stops every node.
type NATSCluster struct {
	Nodes []*NATSNode
}

// StartNATSCluster starts n nodes (n ≥ 1; 3 for a JetStream cluster that
// survives losing one) with MQTT, and returns once every node reports
// healthy JetStream. MQTT needs JetStream: sessions, retained messages and
// QoS 1 messages live in its streams (replicated across the cluster).
func StartNATSCluster(t testing.TB, n int) *NATSCluster {
	t.Helper()
	need(t, NATSServerPath, "nats-server")
	dir := t.TempDir()
	type ports struct{ client, cluster, mqtt, http int }
	ps := make([]ports, n)
	for i := range ps {
		ps[i] = ports{testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)}
		if ps[i].client == 4222 || ps[i].mqtt == 4222 {
			t.Fatal("nats: port 4222 belongs to the machine's server")
		}
	}
	c := &NATSCluster{}
	for i := range ps {
		name := fmt.Sprintf("n%d", i+1)
		var routes []string
		for j := range ps {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ps[j].cluster))
			}
		}
		var conf strings.Builder
		fmt.Fprintf(&conf, "server_name: %s\nlisten: 127.0.0.1:%d\nhttp: 127.0.0.1:%d\n", name, ps[i].client, ps[i].http)
		fmt.Fprintf(&conf, "jetstream { store_dir: %q }\n", filepath.Join(dir, name, "js"))
		if n > 1 {
			fmt.Fprintf(&conf, "cluster { name: linegate-test, listen: 127.0.0.1:%d, routes: [%s] }\n", ps[i].cluster, strings.Join(routes, ", "))
		}
		// Explicit replicas: by default the MQTT streams get as many as the
		// servers JetStream knows when the first client connects, which may
		// be 2 of 3, and then losing one node stalls every MQTT connect
		// ("stream has NO quorum").
		fmt.Fprintf(&conf, "mqtt { listen: 127.0.0.1:%d, stream_replicas: %d }\n", ps[i].mqtt, min(n, 3))
		if err := os.MkdirAll(filepath.Join(dir, name), 0o700); err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(dir, name, "nats.conf")
		if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		node := &NATSNode{
			Name:     name,
			MQTTAddr: hostPort(ps[i].mqtt),
			MQTTURL:  "tcp://" + hostPort(ps[i].mqtt),
			Monitor:  "http://" + hostPort(ps[i].http),
			LogPath:  filepath.Join(dir, name, "nats.log"),
		}
		node.p = newProcess(t, "nats-server "+name, node.LogPath, NATSServerPath, "-c", confPath)
		if err := node.p.start(); err != nil {
			t.Fatalf("nats: %v", err)
		}
		c.Nodes = append(c.Nodes, node)
	}
	for _, node := range c.Nodes {
		node.waitHealthy(natsStartTimeout, n)
	}
	return c
}

// waitHealthy waits for the MQTT port and a JetStream meta group that
// knows all n servers: the leader lists the n-1 others as current.
func (nd *NATSNode) waitHealthy(timeout time.Duration, n int) {
	nd.p.t.Helper()
	client := &http.Client{Timeout: time.Second}
	nd.p.waitReady(timeout, "MQTT on "+nd.MQTTAddr+" and a JetStream cluster of all nodes", func() bool {
		if !dialable(nd.MQTTAddr) {
			return false
		}
		resp, err := client.Get(nd.Monitor + "/jsz")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var jsz struct {
			Meta struct {
				Leader   string `json:"leader"`
				Replicas []struct {
					Current bool `json:"current"`
				} `json:"replicas"`
			} `json:"meta_cluster"`
		}
		if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&jsz) != nil || jsz.Meta.Leader == "" {
			return false
		}
		if n == 1 || jsz.Meta.Leader != nd.Name {
			return true // the leader's view is checked on the leader
		}
		current := 0
		for _, r := range jsz.Meta.Replicas {
			if r.Current {
				current++
			}
		}
		return current == n-1
	})
}

// Kill ends the node with SIGKILL: its clients see the connection drop,
// the others elect new stream leaders.
func (nd *NATSNode) Kill() { nd.p.kill() }

// Stop ends the node cleanly (SIGTERM).
func (nd *NATSNode) Stop() { nd.p.stop() }

// Running tells whether the node's process is alive.
func (nd *NATSNode) Running() bool { return nd.p.running() }

// Log returns the end of the node's log.
func (nd *NATSNode) Log() string { return nd.p.log() }
