// Command occtl is the administrator's tool for a onecloud cluster: it calls
// the cluster API of a server node (HTTPS, mutual TLS) with an admin
// certificate.
//
//	occtl [-server https://ADDR:9443] [-dir DIR | -cert admin.crt -key admin.key -ca ca.crt] [-json] COMMAND
//
//	nodes                                        list the nodes and their state
//	machines                                     list the enrolment inbox
//	machines show ID                             one machine in detail
//	approve ID -role R [-school S] [-ek-hash H]  let a machine boot into a role
//	declare MAC -role R [-serial N] [-school S] [-ek-hash H]  approve a machine before it first boots
//	reject ID [-reason T]                        keep a machine out
//	remove NODE                                  remove a node (a server node leaves etcd)
//	cluster status                               the etcd members, leader and health
//	release add SHA256 [-name N]                 accept an image digest in attestations
//	release add -image DIR                       release a built image (its release.json, as the firmware measures it)
//	release list                                 the released digests
//	console show | set-pin [-pin-stdin] | set-lang zh|en   the node console's settings on every box
//
// By default the certificate, key and CA are admin.crt, admin.key and ca.crt
// in the folder `noded init` wrote the admin bundle to ($OCCTL_DIR, else
// /var/lib/onecloud/noded/admin-admin), and the server is $OCCTL_SERVER,
// else https://127.0.0.1:9443.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// Files of the admin bundle `noded init` writes.
const (
	adminCertFile = "admin.crt"
	adminKeyFile  = "admin.key"
	// defaultDir is where `noded init` leaves the bundle of its default
	// administrator in its default state folder.
	defaultDir = "/var/lib/onecloud/noded/admin-admin"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, env{getenv: os.Getenv})
	stop()
	os.Exit(code)
}

// env is what run takes from its surroundings; tests set it.
type env struct {
	getenv func(string) string
	// stdin is where `console set-pin -pin-stdin` reads; nil means os.Stdin.
	stdin io.Reader
	// now is the clock certificates are checked at; nil means time.Now.
	now func() time.Time
}

func (e env) clock() time.Time {
	if e.now != nil {
		return e.now()
	}
	return time.Now()
}

// options are the flags every command takes.
type options struct {
	server, dir, cert, key, ca string
	json                       bool
	timeout                    time.Duration
}

// defaults are the options before any flag: from the environment, else
// where `noded init` leaves things.
func defaults(e env) options {
	return options{
		server:  cmpOr(e.getenv("OCCTL_SERVER"), fmt.Sprintf("https://127.0.0.1:%d", api.DefaultPort)),
		dir:     cmpOr(e.getenv("OCCTL_DIR"), defaultDir),
		timeout: 30 * time.Second,
	}
}

// register adds the common flags to fs, with the values of def as defaults:
// a command's flag set takes those given before the command as its own.
func (o *options) register(fs *flag.FlagSet, def options) {
	fs.StringVar(&o.server, "server", def.server, "cluster API of a server node, https://ADDR:PORT ($OCCTL_SERVER)")
	fs.StringVar(&o.dir, "dir", def.dir, "folder of the admin bundle from `noded init`: admin.crt, admin.key, ca.crt ($OCCTL_DIR)")
	fs.StringVar(&o.cert, "cert", def.cert, "admin certificate (default DIR/admin.crt)")
	fs.StringVar(&o.key, "key", def.key, "admin key (default DIR/admin.key)")
	fs.StringVar(&o.ca, "ca", def.ca, "cluster CA certificate (default DIR/ca.crt)")
	fs.BoolVar(&o.json, "json", def.json, "print JSON instead of a table")
	fs.DurationVar(&o.timeout, "timeout", def.timeout, "give up on the server after this long")
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

const usage = `usage: occtl [-server https://ADDR:PORT] [-dir DIR | -cert admin.crt -key admin.key -ca ca.crt] [-json] COMMAND

commands:
  nodes                                        list the nodes and their state
  machines                                     list the enrolment inbox
  machines show ID                             one machine in detail
  approve ID -role R [-school S] [-ek-hash H]  let a machine boot into role R (server, vdi, idv, tci)
  declare MAC -role R [-serial N] [-school S] [-ek-hash H]
                                              approve a machine before it first boots (from its label)
  reject ID [-reason T]                        keep a machine out
  remove NODE                                  remove a node (a server node leaves etcd)
  cluster status                               the etcd members, leader and health
  release add SHA256 [-name N]                 accept an image digest in attestations
  release add -image DIR                       release a built image (image-builder's output folder)
  release list                                 the released digests
  console show                                 the node console's settings on every box
  console set-pin [-pin-stdin]                 set the PIN of the console's admin menu (hashed here)
  console set-lang zh|en                       the console's language on every box

ID is a machine id (oc-525400123456) or its boot MAC. Flags may follow the command.
`

// usageError is a mistake on the command line: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// run runs one occtl command and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, e env) int {
	var o options
	fs := flag.NewFlagSet("occtl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o.register(fs, defaults(e))
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		fmt.Fprintf(stderr, "occtl: %v\n%s", err, usage)
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	err := command(ctx, fs.Args(), &o, stdout, e)
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "occtl: %v\n\n%s", err, usage)
		return 2
	default:
		fmt.Fprintf(stderr, "occtl: %v\n", explain(err, &o))
		return 1
	}
}

// parse parses a command's flags, which may come before, between or after
// its want positional arguments.
func parse(fs *flag.FlagSet, args []string, want int, what string) ([]string, error) {
	pos, err := parseUpTo(fs, args, want, what)
	if err == nil && len(pos) != want {
		return nil, usagef("%s takes %s", fs.Name(), what)
	}
	return pos, err
}

// parseUpTo is parse for commands that take at most max arguments.
func parseUpTo(fs *flag.FlagSet, args []string, max int, what string) ([]string, error) {
	fs.SetOutput(io.Discard)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) > max {
		return nil, usagef("%s takes %s", fs.Name(), what)
	}
	return pos, nil
}

func command(ctx context.Context, args []string, o *options, out io.Writer, e env) error {
	cmd, rest := args[0], args[1:]
	sub := func(name string) *flag.FlagSet {
		fs := flag.NewFlagSet("occtl "+name, flag.ContinueOnError)
		o.register(fs, *o)
		return fs
	}
	switch cmd {
	case "nodes":
		fs := sub("nodes")
		if _, err := parse(fs, rest, 0, "no arguments"); err != nil {
			return err
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			nodes, err := c.Nodes(ctx)
			if err != nil {
				return err
			}
			return printNodes(out, o.json, nodes)
		})
	case "machines", "machine":
		if len(rest) > 0 && rest[0] == "show" {
			fs := sub("machines show")
			pos, err := parse(fs, rest[1:], 1, "one machine id")
			if err != nil {
				return err
			}
			return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
				m, err := c.Machine(ctx, pos[0])
				if err != nil {
					return err
				}
				return printMachine(out, o.json, m)
			})
		}
		fs := sub("machines")
		if _, err := parse(fs, rest, 0, "no arguments, or show ID"); err != nil {
			return err
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			ms, err := c.Machines(ctx)
			if err != nil {
				return err
			}
			return printMachines(out, o.json, ms)
		})
	case "approve":
		fs := sub("approve")
		role := fs.String("role", "", "role: server, vdi, idv or tci (required)")
		school := fs.String("school", "", "school the machine belongs to")
		ek := fs.String("ek-hash", "", "SHA-256 of the TPM's EK public key, for a TPM without an EK certificate")
		pos, err := parse(fs, rest, 1, "one machine id: approve ID -role R")
		if err != nil {
			return err
		}
		if *role == "" {
			return usagef("approve needs -role (server, vdi, idv or tci)")
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			m, err := c.Approve(ctx, pos[0], api.ApproveRequest{Role: api.Role(*role), School: *school, EKHash: *ek})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(out, m)
			}
			fmt.Fprintf(out, "%s approved as %s%s\n", m.ID, m.Role, atSchool(m.School))
			return nil
		})
	case "declare":
		fs := sub("declare")
		role := fs.String("role", "", "role: server, vdi, idv or tci (required)")
		serial := fs.String("serial", "", "the machine's serial number (from its label)")
		school := fs.String("school", "", "school the machine belongs to")
		ek := fs.String("ek-hash", "", "SHA-256 of the TPM's EK public key, for a TPM without an EK certificate")
		pos, err := parse(fs, rest, 1, "one MAC: declare MAC -role R")
		if err != nil {
			return err
		}
		if *role == "" {
			return usagef("declare needs -role (server, vdi, idv or tci)")
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			m, err := c.Declare(ctx, api.DeclareRequest{MAC: pos[0], Serial: *serial,
				ApproveRequest: api.ApproveRequest{Role: api.Role(*role), School: *school, EKHash: *ek}})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(out, m)
			}
			fmt.Fprintf(out, "%s declared and approved as %s%s\n", m.ID, m.Role, atSchool(m.School))
			return nil
		})
	case "reject":
		fs := sub("reject")
		reason := fs.String("reason", "", "why, shown on the machine's screen")
		pos, err := parse(fs, rest, 1, "one machine id: reject ID [-reason T]")
		if err != nil {
			return err
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			m, err := c.Reject(ctx, pos[0], api.RejectRequest{Reason: *reason})
			if err != nil {
				return err
			}
			if o.json {
				return printJSON(out, m)
			}
			fmt.Fprintf(out, "%s rejected: %s\n", m.ID, m.Reason)
			return nil
		})
	case "remove":
		fs := sub("remove")
		pos, err := parse(fs, rest, 1, "one node name: remove NODE")
		if err != nil {
			return err
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			if err := c.RemoveNode(ctx, pos[0]); err != nil {
				return err
			}
			if o.json {
				return printJSON(out, map[string]string{"removed": pos[0]})
			}
			fmt.Fprintf(out, "%s removed\n", pos[0])
			return nil
		})
	case "console":
		return consoleCommand(ctx, rest, o, out, e, sub)
	case "cluster":
		fs := sub("cluster")
		pos, err := parse(fs, rest, 1, "one word: cluster status")
		if err != nil {
			return err
		}
		if pos[0] != "status" {
			return usagef("cluster %s: the only cluster command is `cluster status`", pos[0])
		}
		return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
			st, err := c.ClusterStatus(ctx)
			if err != nil {
				return err
			}
			return printCluster(out, o.json, st)
		})
	case "release", "releases":
		if len(rest) == 0 {
			return usagef("release takes add SHA256 [-name N], or list")
		}
		switch rest[0] {
		case "add":
			fs := sub("release add")
			name := fs.String("name", "", "what the image is (\"onecloud 1.2 kernel\")")
			image := fs.String("image", "", "a built image's folder (image-builder -o DIR): release what its firmware measures")
			pos, err := parseUpTo(fs, rest[1:], 1, "one digest, or -image DIR: release add SHA256 [-name N]")
			if err != nil {
				return err
			}
			req := api.ReleaseRequest{Name: *name}
			switch {
			case *image != "" && len(pos) == 0:
				if req, err = imageRelease(*image, *name); err != nil {
					return err
				}
			case *image == "" && len(pos) == 1:
				req.SHA256 = pos[0]
			default:
				return usagef("release add takes one digest or -image DIR, not both or neither")
			}
			return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
				r, err := c.AddRelease(ctx, req)
				if err != nil {
					return err
				}
				if o.json {
					return printJSON(out, r)
				}
				fmt.Fprintf(out, "sha256:%s released%s\n", r.SHA256, named(r.Name))
				return nil
			})
		case "list":
			fs := sub("release list")
			if _, err := parse(fs, rest[1:], 0, "no arguments"); err != nil {
				return err
			}
			return withClient(ctx, o, e, func(ctx context.Context, c *api.Client) error {
				rs, err := c.Releases(ctx)
				if err != nil {
					return err
				}
				return printReleases(out, o.json, rs)
			})
		}
		return usagef("release %s: use release add SHA256 or release list", rest[0])
	case "help", "-h", "--help":
		fmt.Fprint(out, usage)
		return nil
	}
	return usagef("unknown command %q", cmd)
}

func atSchool(s string) string {
	if s == "" {
		return ""
	}
	return " at school " + s
}

func named(s string) string {
	if s == "" {
		return ""
	}
	return " as " + strconv.Quote(s)
}

// withClient loads the admin bundle, makes the client and runs f.
func withClient(ctx context.Context, o *options, e env, f func(context.Context, *api.Client) error) error {
	c, err := newClient(o, e)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	return f(ctx, c)
}

func newClient(o *options, e env) (*api.Client, error) {
	certFile := cmpOr(o.cert, filepath.Join(o.dir, adminCertFile))
	keyFile := cmpOr(o.key, filepath.Join(o.dir, adminKeyFile))
	caFile := cmpOr(o.ca, filepath.Join(o.dir, pki.CACertFile))
	bundle := "copy the admin bundle `noded init` wrote (STATE/admin-NAME on the first server node) and point -dir at it, or give -cert, -key and -ca"
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no admin certificate: %w: %s", err, bundle)
		}
		return nil, fmt.Errorf("admin certificate %s and key %s: %w: %s", certFile, keyFile, err, bundle)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("admin certificate %s: %w", certFile, err)
		}
	}
	if now := e.clock(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("your admin certificate %s (%q) expired at %s: ask for a new one from whoever holds the cluster CA", certFile, leaf.Subject.CommonName, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	cas, err := pki.ReadCerts(caFile)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("no cluster CA certificate: %w: %s", err, bundle)
		}
		return nil, fmt.Errorf("cluster CA certificate %s: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: e.clock(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("admin certificate %s is not from the cluster CA in %s (%v): they belong to different clusters; use the bundle of one cluster", certFile, caFile, err)
	}
	return api.NewClient(api.ClientConfig{Server: o.server, CA: pool, Certificate: &cert, Now: e.now, Timeout: o.timeout})
}

// explain words an error for the operator: what went wrong and what to do.
func explain(err error, o *options) string {
	var se *api.StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case 401, 403:
			return fmt.Sprintf("%s: the server did not accept your certificate for this; use an admin certificate of this cluster (-dir, -cert)", se.Message)
		case 503:
			return fmt.Sprintf("%s (the server node cannot answer this now; try again, or ask another server node with -server)", se.Message)
		}
		return se.Message
	}
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var opErr *net.OpError
	var dnsErr *net.DNSError
	msg := err.Error()
	switch {
	case errors.As(err, &unknownCA):
		return fmt.Sprintf("the server at %s has a certificate that is not from the cluster CA in -ca/-dir: -server points at another cluster, or the CA file is of another cluster (%v)", o.server, err)
	case errors.As(err, &hostErr):
		return fmt.Sprintf("the server's certificate is not for the address in -server %s (%v): use the address the server node was set up with, -server https://ADDR:%d", o.server, hostErr, api.DefaultPort)
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return fmt.Sprintf("the server's certificate has expired or this computer's clock is wrong (%v): check the clock, and that the server node renews its certificate", err)
	case strings.Contains(msg, "remote error: tls"):
		return fmt.Sprintf("the server refused your client certificate (%v): it is not from this cluster's CA, or it has expired; check -dir/-cert, or ask for a new admin certificate", err)
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Sprintf("no cluster API at %s (connection refused): is noded running in server mode there, and is this its address and port? set -server or $OCCTL_SERVER", o.server)
	case errors.As(err, &dnsErr):
		return fmt.Sprintf("cannot resolve the server in %s (%v): check -server", o.server, err)
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &opErr) && opErr.Timeout():
		return fmt.Sprintf("the server at %s did not answer within %v: is it up and reachable from here (firewall, network)? (%v)", o.server, o.timeout, err)
	}
	return msg
}
