package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	stdlog "log"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/linegate/linegate/configs"
	"github.com/linegate/linegate/drivers"
	"github.com/linegate/linegate/drivers/opcua"
)

// defaultPKIDir is where `linegate run` keeps the pki with the default
// buffer path.
var defaultPKIDir = filepath.Join(filepath.Dir(configs.DefaultBufferPath), "pki")

func newOPCUACmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "opcua",
		Short: "Browse, read and subscribe to an OPC UA server; manage linegate's certificates",
		Long: `Diagnostics for an OPC UA server, by its endpoint URL alone, with the
driver's own connect path (endpoint selection, certificate trust, login):
what these commands show is what "run" gets.

Certificates live in a pki folder (--pki-dir, the one of the config's
devices: default pki/ beside the buffer file, /var/lib/linegate/pki):
own/ holds linegate's certificate (created on first use), trusted/ the
server certificates linegate trusts, rejected/ the ones it refused.

Exit codes: 0 ok, 1 failed (unreachable, refused, a bad value), 2 usage.`,
		Args: cobra.NoArgs,
		RunE: needSubcommand("opcua: name a subcommand: endpoints, browse, read, subscribe, cert or trust"),
	}
	cmd.AddCommand(newOPCUAEndpointsCmd(g), newOPCUABrowseCmd(g), newOPCUAReadCmd(g), newOPCUASubscribeCmd(g),
		newOPCUACertCmd(g), newOPCUATrustCmd(g))
	return cmd
}

// opcuaConn holds the flags that reach a server.
type opcuaConn struct {
	policy, mode       string
	username, passFile string
	certFile, keyFile  string
	pkiDir             string
	timeout            time.Duration
	allowPlain         bool
}

// opcuaPasswordEnv carries the password for --username (never a flag: it
// would show in the process list).
const opcuaPasswordEnv = "LINEGATE_OPCUA_PASSWORD"

func (c *opcuaConn) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.policy, "security-policy", "None", "None | Basic128Rsa15 | Basic256 | Basic256Sha256 | Aes128_Sha256_RsaOaep | Aes256_Sha256_RsaPss | auto")
	fs.StringVar(&c.mode, "security-mode", "", "None | Sign | SignAndEncrypt (default: SignAndEncrypt unless the policy is None)")
	fs.StringVar(&c.username, "username", "", "log in as this user; the password comes from --password-file or $"+opcuaPasswordEnv)
	fs.StringVar(&c.passFile, "password-file", "", "file holding the password")
	fs.StringVar(&c.certFile, "user-cert", "", "log in with this X.509 user certificate (with --user-key)")
	fs.StringVar(&c.keyFile, "user-key", "", "PEM RSA key of --user-cert")
	fs.StringVar(&c.pkiDir, "pki-dir", defaultPKIDir, "pki folder (own/ trusted/ rejected/)")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Second, "timeout of each request")
	fs.BoolVar(&c.allowPlain, "allow-plain-password", false, "send --username's password even over an endpoint that would carry it unencrypted")
}

// driver builds a driver for ad-hoc tags; bad flags are usage errors.
func (c *opcuaConn) driver(endpoint string, tags []opcua.Tag, interval time.Duration, log *slog.Logger) (*opcua.Driver, error) {
	if !strings.HasPrefix(endpoint, "opc.tcp://") {
		return nil, usageError(fmt.Errorf("endpoint %q: want opc.tcp://host:port", endpoint))
	}
	cfg := opcua.Config{
		Endpoint: endpoint, SecurityPolicy: c.policy, SecurityMode: c.mode,
		Username: c.username, UserCertFile: c.certFile, UserKeyFile: c.keyFile,
		PKIDir: c.pkiDir, Timeout: c.timeout, ConnectTimeout: max(c.timeout, 5*time.Second),
		Interval: interval, Tags: tags, Logger: log, AllowPlainPassword: c.allowPlain,
	}
	if c.username != "" {
		switch {
		case c.passFile != "":
			b, err := os.ReadFile(c.passFile)
			if err != nil {
				return nil, usageError(fmt.Errorf("--password-file: %w", err))
			}
			cfg.Password = strings.TrimRight(string(b), "\r\n")
		default:
			cfg.Password = os.Getenv(opcuaPasswordEnv)
		}
	}
	d, err := opcua.New(cfg)
	if err != nil {
		return nil, usageError(err)
	}
	return d, nil
}

// opcuaEndpointsOptions are the flags of `linegate opcua endpoints`.
type opcuaEndpointsOptions struct {
	g       *globals
	asJSON  bool
	timeout time.Duration
}

func newOPCUAEndpointsCmd(g *globals) *cobra.Command {
	o := &opcuaEndpointsOptions{g: g}
	cmd := &cobra.Command{
		Use:   "endpoints URL",
		Short: "List the endpoints (security policy, mode, logins, certificate) a server offers",
		Example: `  linegate opcua endpoints opc.tcp://10.0.0.5:4840
  linegate opcua endpoints opc.tcp://10.0.0.5:4840 --json`,
		Args: cobra.ExactArgs(1),
		RunE: o.run,
	}
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&o.timeout, "timeout", 5*time.Second, "timeout")
	return cmd
}

func (o *opcuaEndpointsOptions) run(cmd *cobra.Command, args []string) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), o.timeout)
	defer cancel()
	eps, err := opcua.GetEndpoints(ctx, args[0])
	if err != nil {
		return err
	}
	if o.asJSON {
		return writeJSON(o.g.stdout, eps)
	}
	tw := tabwriter.NewWriter(o.g.stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POLICY\tMODE\tLEVEL\tLOGINS\tCERTIFICATE (SHA-1)\tURL")
	for _, e := range eps {
		p := e.Policy
		if !e.Supported {
			p += " (unsupported)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\n", p, e.Mode, e.Level, strings.Join(e.Logins, ","), dash(e.Thumbprint), e.URL)
	}
	return tw.Flush()
}

// opcuaBrowseOptions are the flags of `linegate opcua browse`.
type opcuaBrowseOptions struct {
	g      *globals
	conn   opcuaConn
	depth  int
	asJSON bool
	asYAML bool
	by     browseYAML
}

func newOPCUABrowseCmd(g *globals) *cobra.Command {
	o := &opcuaBrowseOptions{g: g}
	cmd := &cobra.Command{
		Use:   "browse URL [NODE] [--yaml [--filter GLOB] [--name DEVICE]]",
		Short: "Browse the address space from the Objects folder or a node",
		Long: `Browse lists the nodes below NODE (a node id like ns=2;s=Line1 or a browse
path like Objects/Line1/Press01; default the Objects folder), depth levels
deep, with the node id and browse path to put in a config. With --yaml it
prints the variables found (those whose browse path or name match --filter)
as a device block, ready to paste under devices:.`,
		Example: `  linegate opcua browse opc.tcp://10.0.0.5:4840
  linegate opcua browse opc.tcp://10.0.0.5:4840 "ns=3;s=\"DB_Oven\"" --depth 3
  linegate opcua browse opc.tcp://10.0.0.5:4840 Objects/Line1 --security-policy auto --username op
  linegate opcua browse opc.tcp://10.0.0.5:4840 Objects/Oven02 --depth 3 --yaml --filter "*Temp*"`,
		Args: cobra.RangeArgs(1, 2),
		RunE: o.run,
	}
	o.conn.addFlags(cmd.Flags())
	cmd.Flags().IntVar(&o.depth, "depth", 1, "levels to browse (1 = the children only)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&o.asYAML, "yaml", false, "print the variables found as a device block of linegate YAML")
	cmd.Flags().StringVar(&o.by.filter, "filter", "", `with --yaml: only variables whose browse path or name match this glob ("*Temp*", "Zone?/*")`)
	cmd.Flags().StringVar(&o.by.name, "name", "", "with --yaml: the device name (default: from NODE)")
	return cmd
}

func (o *opcuaBrowseOptions) run(cmd *cobra.Command, args []string) error {
	if o.depth < 1 || o.depth > 20 {
		return usageError(fmt.Errorf("--depth %d: want 1..20", o.depth))
	}
	if err := checkFilter(o.by.filter); err != nil {
		return err
	}
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	d, err := o.conn.driver(args[0], nil, 0, log)
	if err != nil {
		return err
	}
	defer d.Close()
	node := ""
	if len(args) == 2 {
		node = args[1]
	}
	var refs []opcua.Ref
	tw := tabwriter.NewWriter(o.g.stdout, 2, 4, 2, ' ', 0)
	if !o.asJSON {
		fmt.Fprintln(tw, "PATH\tCLASS\tNODE ID")
	}
	o.by.endpoint, o.by.conn, o.by.start = args[0], &o.conn, node
	err = d.Browse(cmd.Context(), node, o.depth, func(r opcua.Ref) {
		if o.asYAML {
			o.by.add(r)
			return
		}
		if o.asJSON {
			refs = append(refs, r)
			return
		}
		fmt.Fprintf(tw, "%s%s\t%s\t%s\n", strings.Repeat("  ", r.Depth-1), r.BrowseName, r.NodeClass, r.NodeID)
	})
	if err != nil {
		return err
	}
	if o.asYAML {
		return o.by.write(o.g.stdout)
	}
	if o.asJSON {
		if refs == nil {
			refs = []opcua.Ref{}
		}
		return writeJSON(o.g.stdout, refs)
	}
	return tw.Flush()
}

// opcuaValue is one node's value as the read and subscribe commands print it.
type opcuaValue struct {
	Node    string    `json:"node"`
	Value   any       `json:"value"`
	Quality string    `json:"quality"`
	Error   string    `json:"error,omitempty"`
	TS      time.Time `json:"ts,omitzero"`
}

func opcuaValueOf(node string, s drivers.Sample) opcuaValue {
	v := opcuaValue{Node: node, Value: s.Value, Quality: s.Quality.String(), TS: s.TS}
	if s.Err != nil {
		v.Error = s.Err.Error()
	}
	return v
}

func (v opcuaValue) text() string {
	val := fmt.Sprintf("%v", v.Value)
	if s, ok := v.Value.(string); ok {
		val = fmt.Sprintf("%q", s)
	}
	if v.Quality != "good" {
		val = strings.ToUpper(v.Quality) + " " + v.Error
		if v.Value != nil {
			val = fmt.Sprintf("%v %s", v.Value, val)
		}
	}
	ts := "-"
	if !v.TS.IsZero() {
		ts = v.TS.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return fmt.Sprintf("%s\t%s\t%s", v.Node, val, ts)
}

func nodeTags(nodes []string) []opcua.Tag {
	tags := make([]opcua.Tag, len(nodes))
	for i, n := range nodes {
		tags[i] = opcua.SourceTag(fmt.Sprint("node", i), n)
	}
	return tags
}

// opcuaReadOptions are the flags of `linegate opcua read`.
type opcuaReadOptions struct {
	g      *globals
	conn   opcuaConn
	asJSON bool
}

func newOPCUAReadCmd(g *globals) *cobra.Command {
	o := &opcuaReadOptions{g: g}
	cmd := &cobra.Command{
		Use:   "read URL NODE...",
		Short: "Read nodes once (node ids or browse paths), with quality and source timestamp",
		Long: `Read reads the Value attribute of each NODE (a node id, or a browse path
from the Objects folder) once and prints the value as the gateway would
publish it, its quality (good, uncertain, bad with the OPC UA status name)
and its source timestamp. Exit 1 if the server is unreachable or a node
is not good.`,
		Example: `  linegate opcua read opc.tcp://10.0.0.5:4840 "ns=2;s=Oven02.Zone1.Temp" Objects/Line1/Press01/Temperature
  LINEGATE_OPCUA_PASSWORD=secret linegate opcua read opc.tcp://10.0.0.5:4840 "ns=3;i=1001" \
      --security-policy Basic256Sha256 --username op --json`,
		Args: cobra.MinimumNArgs(2),
		RunE: o.run,
	}
	o.conn.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	return cmd
}

func (o *opcuaReadOptions) run(cmd *cobra.Command, args []string) error {
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	nodes := args[1:]
	d, err := o.conn.driver(args[0], nodeTags(nodes), 0, log)
	if err != nil {
		return err
	}
	defer d.Close()
	out := make([]drivers.Sample, len(nodes))
	if err := d.Read(cmd.Context(), out); err != nil {
		return err
	}
	vals := make([]opcuaValue, len(nodes))
	bad := 0
	for i, s := range out {
		vals[i] = opcuaValueOf(nodes[i], s)
		if s.Quality != drivers.Good {
			bad++
		}
	}
	if o.asJSON {
		err = writeJSON(o.g.stdout, vals)
	} else {
		tw := tabwriter.NewWriter(o.g.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tVALUE\tSOURCE TS")
		for _, v := range vals {
			fmt.Fprintln(tw, v.text())
		}
		err = tw.Flush()
	}
	if err == nil && bad > 0 {
		err = &exitError{exitFailed, fmt.Errorf("%d of %d node(s) not good", bad, len(nodes))}
	}
	return err
}

// opcuaSubscribeOptions are the flags of `linegate opcua subscribe`.
type opcuaSubscribeOptions struct {
	g        *globals
	conn     opcuaConn
	interval time.Duration
	duration time.Duration
	asJSON   bool
}

func newOPCUASubscribeCmd(g *globals) *cobra.Command {
	o := &opcuaSubscribeOptions{g: g}
	cmd := &cobra.Command{
		Use:   "subscribe URL NODE...",
		Short: "Subscribe to nodes and print every change until Ctrl-C",
		Long: `Subscribe creates a subscription with a monitored item per NODE and prints
each change as it arrives (with --json one JSON object per line), through
the gateway's own subscription code: reconnects, device down and up
included. Ctrl-C or --duration stops it.`,
		Example: `  linegate opcua subscribe opc.tcp://10.0.0.5:4840 "ns=2;s=Oven02.Zone1.Temp" --interval 200ms
  linegate opcua subscribe opc.tcp://10.0.0.5:4840 Objects/Oven01/Parts --duration 30s --json`,
		Args: cobra.MinimumNArgs(2),
		RunE: o.run,
	}
	o.conn.addFlags(cmd.Flags())
	cmd.Flags().DurationVar(&o.interval, "interval", time.Second, "publishing and sampling interval")
	cmd.Flags().DurationVar(&o.duration, "duration", 0, "stop after this long (0 = until Ctrl-C)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print one JSON object per change")
	return cmd
}

func (o *opcuaSubscribeOptions) run(cmd *cobra.Command, args []string) error {
	if o.interval < 10*time.Millisecond {
		return usageError(fmt.Errorf("--interval %v: want 10ms or more", o.interval))
	}
	log, err := o.g.logger()
	if err != nil {
		return err
	}
	nodes := args[1:]
	d, err := o.conn.driver(args[0], nodeTags(nodes), o.interval, log)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.duration)
		defer cancel()
	}
	return d.Subscribe(ctx, func(cs []drivers.Change) {
		for _, c := range cs {
			printChange(o.g.stdout, opcuaValueOf(nodes[c.Index], c.Sample), o.asJSON)
		}
	}, func(err error) {
		if err != nil {
			fmt.Fprintf(o.g.stderr, "linegate: %s: down: %v\n", args[0], err)
			return
		}
		p, m := d.Security()
		fmt.Fprintf(o.g.stderr, "linegate: %s: subscribed (%s/%s), %d node(s)\n", args[0], p, m, len(nodes))
	})
}

func printChange(w io.Writer, v opcuaValue, asJSON bool) {
	if asJSON {
		_ = json.NewEncoder(w).Encode(v)
		return
	}
	fmt.Fprintln(w, strings.ReplaceAll(v.text(), "\t", "  "))
}

// opcuaCertOptions are the flags of `linegate opcua cert`.
type opcuaCertOptions struct {
	g      *globals
	pkiDir string
	uri    string
	asJSON bool
}

func newOPCUACertCmd(g *globals) *cobra.Command {
	o := &opcuaCertOptions{g: g}
	cmd := &cobra.Command{
		Use:   "cert",
		Short: "Show linegate's client certificate, creating it if there is none",
		Long: `Cert shows the client certificate in <pki-dir>/own (cert.pem, key.pem),
creating it first if there is none: RSA 2048, self-signed, valid 10 years,
ApplicationURI urn:linegate:<hostname> in its subject alternative names.
Copy own/cert.pem to the server's trusted certificates (on an S7-1500: TIA
Portal, certificate manager) when the server does not accept unknown clients.`,
		Example: `  linegate opcua cert --pki-dir /var/lib/linegate/pki
  linegate opcua cert --json`,
		Args: cobra.NoArgs,
		RunE: o.run,
	}
	cmd.Flags().StringVar(&o.pkiDir, "pki-dir", defaultPKIDir, "pki folder (own/ trusted/ rejected/)")
	cmd.Flags().StringVar(&o.uri, "application-uri", "", "ApplicationURI of a new certificate (default urn:linegate:<hostname>)")
	cmd.Flags().BoolVar(&o.asJSON, "json", false, "print JSON")
	return cmd
}

func (o *opcuaCertOptions) run(_ *cobra.Command, _ []string) error {
	p, err := opcua.OpenPKI(o.pkiDir)
	if err != nil {
		return err
	}
	own, err := p.Own(o.uri)
	if err != nil {
		return err
	}
	c := own.Cert
	info := struct {
		Created    bool      `json:"created"`
		Cert       string    `json:"cert"`
		Key        string    `json:"key"`
		URI        string    `json:"application_uri"`
		Subject    string    `json:"subject"`
		Thumbprint string    `json:"thumbprint"`
		NotBefore  time.Time `json:"not_before"`
		NotAfter   time.Time `json:"not_after"`
		DNS        []string  `json:"dns_names"`
	}{own.Created, own.CertPath, own.KeyPath, own.URI, c.Subject.String(), opcua.Thumbprint(own.DER), c.NotBefore.UTC(), c.NotAfter.UTC(), c.DNSNames}
	if o.asJSON {
		return writeJSON(o.g.stdout, info)
	}
	if own.Created {
		fmt.Fprintf(o.g.stdout, "created a new client certificate\n")
	}
	fmt.Fprintf(o.g.stdout, "certificate      %s\nkey              %s\napplication URI  %s\nsubject          %s\nSHA-1            %s\nvalid            %s .. %s\nDNS names        %s\n",
		info.Cert, info.Key, info.URI, info.Subject, info.Thumbprint,
		info.NotBefore.Format(time.DateOnly), info.NotAfter.Format(time.DateOnly), strings.Join(info.DNS, ", "))
	return nil
}

// opcuaTrustOptions are the flags of `linegate opcua trust`.
type opcuaTrustOptions struct {
	g      *globals
	pkiDir string
}

func newOPCUATrustCmd(g *globals) *cobra.Command {
	o := &opcuaTrustOptions{g: g}
	cmd := &cobra.Command{
		Use:   "trust FILE|THUMBPRINT",
		Short: "Trust a server certificate: a file, or the thumbprint of one in rejected/",
		Long: `Trust copies a server certificate into <pki-dir>/trusted. The argument is a
certificate file (DER or PEM), or the SHA-1 thumbprint of a certificate
that linegate refused and copied to <pki-dir>/rejected (the error says
which). Compare the thumbprint with the one the server shows (on an
S7-1500: the display or TIA Portal) before trusting it. The running
gateway picks the certificate up on its next connect attempt.`,
		Example: `  linegate opcua trust --pki-dir /var/lib/linegate/pki 3F2A...C9
  linegate opcua trust --pki-dir /var/lib/linegate/pki /tmp/plc-oven02.der`,
		Args: cobra.ExactArgs(1),
		RunE: o.run,
	}
	cmd.Flags().StringVar(&o.pkiDir, "pki-dir", defaultPKIDir, "pki folder (own/ trusted/ rejected/)")
	return cmd
}

func (o *opcuaTrustOptions) run(_ *cobra.Command, args []string) error {
	p, err := opcua.OpenPKI(o.pkiDir)
	if err != nil {
		return err
	}
	path, err := p.Trust(args[0])
	if err != nil {
		return err
	}
	fmt.Fprintf(o.g.stdout, "trusted: %s\n", path)
	return nil
}

// quietStdLog sends the standard library's logger, which gopcua's server
// writes its start-up chatter to, into log at debug level.
func quietStdLog(log *slog.Logger) {
	stdlog.SetFlags(0)
	stdlog.SetOutput(stdlogWriter{log})
}

type stdlogWriter struct{ log *slog.Logger }

func (w stdlogWriter) Write(p []byte) (int, error) {
	w.log.Debug(strings.TrimSpace(string(p)), "component", "gopcua")
	return len(p), nil
}
