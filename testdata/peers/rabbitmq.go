package peers

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linegate/linegate/internal/testkit"
)

// rabbitMQServerGlob finds the Debian package's server script itself, not
// the /usr/sbin wrapper (which switches to the rabbitmq user, who cannot
// read the test's directory); the directory carries the version (3.10.8).
const rabbitMQServerGlob = "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin/rabbitmq-server"

// rabbitMQServerPath is the newest installed server script, or the glob
// itself (which need then reports missing).
func rabbitMQServerPath() string {
	m, _ := filepath.Glob(rabbitMQServerGlob)
	if len(m) == 0 {
		return rabbitMQServerGlob
	}
	return m[len(m)-1]
}

// rabbitStartTimeout: a fresh node takes 10–20 s (Mnesia, feature flags, the
// MQTT plugin's Raft wait) on this machine kind.
const rabbitStartTimeout = 60 * time.Second

// RabbitMQOptions configures StartRabbitMQ.
type RabbitMQOptions struct {
	// TLSCert, TLSKey and TLSCA (PEM paths) add an MQTT-over-TLS listener
	// on TLSPort.
	TLSCert, TLSKey, TLSCA string
	// ExtraConfig is appended to rabbitmq.conf (new-style sysctl format).
	ExtraConfig string
}

// RabbitMQ is a RabbitMQ node with the MQTT plugin, started for one test:
// its own node name, ports, Erlang cookie, HOME and data directories, never
// the machine's node (rabbit@localhost on 5672/25672). The test's cleanup
// stops it.
type RabbitMQ struct {
	Node     string // lg<random>@localhost
	MQTTAddr string // 127.0.0.1:PORT
	MQTTURL  string // tcp://127.0.0.1:PORT
	TLSPort  int    // 0 without TLS
	TLSURL   string // ssl://127.0.0.1:TLSPort
	AMQPPort int
	Dir      string
	LogPath  string

	p *process
}

// StartRabbitMQ writes the node's configuration and starts it, returning
// once the MQTT listener accepts connections. Anonymous MQTT clients log
// in as guest, allowed from loopback.
func StartRabbitMQ(t testing.TB, opts RabbitMQOptions) *RabbitMQ {
	t.Helper()
	server := rabbitMQServerPath()
	need(t, server, "rabbitmq-server")
	dir := t.TempDir()
	var id [4]byte
	if _, err := rand.Read(id[:]); err != nil {
		t.Fatal(err)
	}
	r := &RabbitMQ{
		Node:     "lg" + hex.EncodeToString(id[:]) + "@localhost",
		AMQPPort: testkit.FreePort(t),
		Dir:      dir,
		LogPath:  filepath.Join(dir, "rabbitmq.log"),
	}
	mqttPort := testkit.FreePort(t)
	distPort := testkit.FreePort(t)
	r.MQTTAddr = hostPort(mqttPort)
	r.MQTTURL = "tcp://" + r.MQTTAddr
	for _, p := range []int{r.AMQPPort, mqttPort, distPort} {
		if p == 5672 || p == 25672 || p == 4369 {
			t.Fatalf("rabbitmq: port %d belongs to the machine's node", p)
		}
	}
	home := filepath.Join(dir, "home")
	for _, d := range []string{home, filepath.Join(dir, "mnesia"), filepath.Join(dir, "log")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// A cookie of its own: rabbitmqctl of the machine's node cannot reach
	// this one, nor the other way round.
	var cookie [16]byte
	if _, err := rand.Read(cookie[:]); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(strings.ToUpper(hex.EncodeToString(cookie[:]))), 0o400); err != nil {
		t.Fatal(err)
	}
	var conf strings.Builder
	fmt.Fprintf(&conf, "listeners.tcp.default = 127.0.0.1:%d\n", r.AMQPPort)
	fmt.Fprintf(&conf, "mqtt.listeners.tcp.default = 127.0.0.1:%d\n", mqttPort)
	conf.WriteString("mqtt.allow_anonymous = true\nloopback_users = none\nlog.console = true\nlog.console.level = info\nlog.file = false\n")
	if opts.TLSCert != "" {
		r.TLSPort = testkit.FreePort(t)
		r.TLSURL = "ssl://" + hostPort(r.TLSPort)
		fmt.Fprintf(&conf, "mqtt.listeners.ssl.default = 127.0.0.1:%d\nssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\nssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n",
			r.TLSPort, opts.TLSCA, opts.TLSCert, opts.TLSKey)
	}
	if opts.ExtraConfig != "" {
		conf.WriteString(opts.ExtraConfig + "\n")
	}
	files := map[string]string{
		"rabbitmq.conf":     conf.String(),
		"enabled_plugins":   "[rabbitmq_mqtt].\n",
		"rabbitmq-env.conf": "", // instead of /etc/rabbitmq/rabbitmq-env.conf, which names the machine's node
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r.p = newProcess(t, "rabbitmq-server", r.LogPath, server)
	r.p.env = []string{
		"PATH=/usr/bin:/bin:/usr/sbin:/sbin",
		"HOME=" + home,
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(dir, "rabbitmq-env.conf"),
		"RABBITMQ_NODENAME=" + r.Node,
		fmt.Sprintf("RABBITMQ_NODE_PORT=%d", r.AMQPPort),
		fmt.Sprintf("RABBITMQ_DIST_PORT=%d", distPort),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(dir, "advanced.config"),
		// The script then execs erl itself, so the test's SIGTERM reaches
		// the node (a graceful stop) and Pdeathsig covers it; -noinput
		// keeps erl from starting a shell that ends at stdin's EOF.
		"RABBITMQ_ALLOW_INPUT=1",
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-noinput",
		"ERL_EPMD_ADDRESS=127.0.0.1", // epmd may already run for the machine's node: shared, harmless
	}
	if err := r.p.start(); err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	r.p.waitReady(rabbitStartTimeout, "MQTT listener on "+r.MQTTAddr, func() bool {
		return dialable(r.MQTTAddr) && (r.TLSPort == 0 || dialable(hostPort(r.TLSPort)))
	})
	return r
}

// Stop stops the node (SIGTERM: a graceful shutdown of about 3 s).
func (r *RabbitMQ) Stop() { r.p.stop() }

// Log returns the end of the node's log.
func (r *RabbitMQ) Log() string { return r.p.log() }
