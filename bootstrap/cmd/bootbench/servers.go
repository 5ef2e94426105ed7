package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// httpPort is where both sides serve HTTP; TFTP is on 69 on both.
const httpPort = 8080

// services is what one measurement needs a server side to answer.
type services struct{ dhcp, tftp, http bool }

// server is one column of the table: bootstrapd, or the peers a school would use instead (dnsmasq for
// DHCP and TFTP, nginx for HTTP). start brings up what need asks for with fresh state (no leases, no
// inbox), so that every measurement starts from the same empty server; stop ends it.
type server interface {
	label(need services) string
	start(ctx context.Context, need services) error
	stop()
	files() bootFiles
	side() netSide
}

// bootFiles is where a server serves the boot path: full URLs, and the TFTP file name.
type bootFiles struct {
	bootScript, machineScript string
	kernel, initrd            string
	tftpFile                  string
}

// imageFiles are the files served, and their sizes, which the clients check.
type imageFiles struct {
	dir                    string // an image-builder output folder
	kernelSize, initrdSize int64
	tftpDir, tftpFile      string // undionly.kpxe in Debian's ipxe folder
	tftpSize               int64
}

const (
	kernelName = "vmlinuz"
	initrdName = "initramfs.cpio.gz"
	readyLine  = "bootstrapd: serving"
)

func readImageFiles(dir, tftpDir, tftpFile string) (imageFiles, error) {
	img := imageFiles{dir: dir, tftpDir: tftpDir, tftpFile: tftpFile}
	for _, f := range []struct {
		path string
		size *int64
		hint string
	}{
		{filepath.Join(dir, kernelName), &img.kernelSize, "build the image first: make image (or give -image DIR)"},
		{filepath.Join(dir, initrdName), &img.initrdSize, "build the image first: make image (or give -image DIR)"},
		{filepath.Join(tftpDir, tftpFile), &img.tftpSize, "install Debian's ipxe package (make deps)"},
	} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return img, fmt.Errorf("%w: %s", err, f.hint)
		}
		*f.size = fi.Size()
	}
	return img, nil
}

// bootstrapdServer runs `bootstrapd serve` in full mode on its side of the lab.
type bootstrapdServer struct {
	bin     string
	net     netSide
	img     imageFiles
	work    string // scratch folder (configs, state)
	logDir  string
	n       int // starts so far, to name each start's state and log
	p       *proc
	version string // the image version the last publish printed
}

func (b *bootstrapdServer) label(services) string { return "bootstrapd" }
func (b *bootstrapdServer) side() netSide         { return b.net }

func (b *bootstrapdServer) files() bootFiles {
	base := fmt.Sprintf("http://%s:%d", b.net.addr, httpPort)
	return bootFiles{
		bootScript: base + "/boot.ipxe", machineScript: base + "/ipxe/machine",
		kernel:   base + "/images/" + b.version + "/" + kernelName,
		initrd:   base + "/images/" + b.version + "/" + initrdName,
		tftpFile: b.img.tftpFile,
	}
}

// bootstrapdConfig is the configuration file of the bench's bootstrapd (the JSON format of
// bootstrap/config.go, written here as JSON so that the bench does not break when the Go types move):
// full mode, the same pool size and lease time as dnsmasq's, a rule that approves the storm's boxes at
// first sight (the normal path of a school's fleet), and the default admission control, which is part of
// what is measured.
func bootstrapdConfig(s netSide, ipxeDir string) map[string]any {
	return map[string]any{
		"mode": "full", "iface": s.iface, "address": s.addr.String(), "http_port": httpPort, "ipxe_dir": ipxeDir,
		"pools": []map[string]any{{"subnet": s.prefix.String(), "first": s.poolFirst.String(), "last": s.poolLast.String(),
			"router": s.addr.String(), "lease": "1h"}},
		"rules": []map[string]any{{"name": "bench", "mac_prefixes": []string{"52:54:00"}, "role": "vdi", "school": "bench"}},
	}
}

func (b *bootstrapdServer) start(ctx context.Context, _ services) error {
	b.n++
	dir := filepath.Join(b.work, fmt.Sprintf("bootstrapd-%d", b.n))
	state := filepath.Join(dir, "state")
	if err := os.MkdirAll(state, 0o755); err != nil {
		return err
	}
	cfg, err := json.MarshalIndent(bootstrapdConfig(b.net, b.img.tftpDir), "", "  ")
	if err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "bootstrapd.json")
	if err := os.WriteFile(cfgPath, cfg, 0o644); err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, b.bin, "publish", "-state", state, b.img.dir).Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = strings.TrimSpace(string(ee.Stderr))
		}
		return fmt.Errorf("bootstrapd publish %s: %w: %s", b.img.dir, err, stderr)
	}
	lines := strings.Fields(strings.TrimSpace(string(out)))
	if len(lines) == 0 {
		return fmt.Errorf("bootstrapd publish %s printed no version on stdout", b.img.dir)
	}
	b.version = lines[len(lines)-1]

	watch := newLineWatch(readyLine)
	logPath := filepath.Join(b.logDir, fmt.Sprintf("bootstrapd-%d.log", b.n))
	b.p, err = startProc(b.net.srv, "bootstrapd", logPath, watch,
		b.bin, "serve", "-config", cfgPath, "-state", state, "-socket", filepath.Join(dir, "bootstrapd.sock"))
	if err != nil {
		return err
	}
	if err := b.p.waitFor(ctx, 30*time.Second, watch.Seen); err != nil {
		b.stop()
		return fmt.Errorf("%w (waiting for the line %q)", err, readyLine)
	}
	return nil
}

func (b *bootstrapdServer) stop() {
	if b.p != nil {
		b.p.stop(5 * time.Second)
		b.p = nil
	}
}

// peerServer runs the programs a school would boot its boxes with otherwise: dnsmasq (DHCP with PXE
// boot options, TFTP) and nginx (HTTP), serving the same files.
type peerServer struct {
	net     netSide
	img     imageFiles
	work    string
	logDir  string
	n       int
	www     string // nginx's document root, made on first use
	dnsmasq *proc
	nginx   *proc
	tag     string // "peer"; "peer2" for the second peer of -calibrate (names its logs and its label)
}

func (p *peerServer) side() netSide { return p.net }

func (p *peerServer) label(need services) string {
	var names []string
	if need.dhcp || need.tftp {
		names = append(names, "dnsmasq")
	}
	if need.http {
		names = append(names, "nginx")
	}
	l := strings.Join(names, " + ")
	if p.tag != "peer" {
		l += " (2nd)"
	}
	return l
}

// peerVersion is the version folder of the peer's copy of the image; the path only has to exist.
const peerVersion = "bench"

func (p *peerServer) files() bootFiles {
	base := fmt.Sprintf("http://%s:%d", p.net.addr, httpPort)
	return bootFiles{
		bootScript: base + "/boot.ipxe", machineScript: base + "/ipxe/machine",
		kernel:   base + "/images/" + peerVersion + "/" + kernelName,
		initrd:   base + "/images/" + peerVersion + "/" + initrdName,
		tftpFile: p.img.tftpFile,
	}
}

func (p *peerServer) start(ctx context.Context, need services) error {
	p.n++
	dir := filepath.Join(p.work, fmt.Sprintf("%s-%d", p.tag, p.n))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if need.dhcp || need.tftp {
		pidFile := filepath.Join(dir, "dnsmasq.pid")
		logPath := filepath.Join(p.logDir, fmt.Sprintf("%s-dnsmasq-%d.log", p.tag, p.n))
		args := dnsmasqArgs(p.net, need, p.img, filepath.Join(dir, "leases"), pidFile, logPath)
		var err error
		if p.dnsmasq, err = startProc(p.net.srv, "dnsmasq", logPath, nil, append([]string{"dnsmasq"}, args...)...); err != nil {
			return err
		}
		pid := strconv.Itoa(p.dnsmasq.cmd.Process.Pid)
		if err := p.dnsmasq.waitFor(ctx, 15*time.Second, func() bool { return pidFileSays(pidFile, pid) }); err != nil {
			p.stop()
			return err
		}
	}
	if need.http {
		if err := p.makeWWW(); err != nil {
			p.stop()
			return err
		}
		conf := filepath.Join(dir, "nginx.conf")
		pidFile := filepath.Join(dir, "nginx.pid")
		logPath := filepath.Join(p.logDir, fmt.Sprintf("%s-nginx-%d.log", p.tag, p.n))
		if err := os.WriteFile(conf, []byte(nginxConf(dir, p.www, pidFile, logPath, netip.AddrPortFrom(p.net.addr, httpPort))), 0o644); err != nil {
			p.stop()
			return err
		}
		var err error
		if p.nginx, err = startProc(p.net.srv, "nginx", logPath, nil, "nginx", "-p", dir, "-c", conf, "-g", "daemon off;"); err != nil {
			p.stop()
			return err
		}
		pid := strconv.Itoa(p.nginx.cmd.Process.Pid)
		if err := p.nginx.waitFor(ctx, 15*time.Second, func() bool { return pidFileSays(pidFile, pid) }); err != nil {
			p.stop()
			return err
		}
	}
	return nil
}

func (p *peerServer) stop() {
	for _, q := range []**proc{&p.dnsmasq, &p.nginx} {
		if *q != nil {
			(*q).stop(5 * time.Second)
			*q = nil
		}
	}
}

// pidFileSays tells whether a PID file holds pid: dnsmasq and nginx write it once their sockets are bound.
func pidFileSays(path, pid string) bool {
	b, err := os.ReadFile(path)
	return err == nil && strings.TrimSpace(string(b)) == pid
}

// dnsmasqArgs is dnsmasq's command line. It gets what an operator would give it for a fleet of this
// size: the same pool and lease time as bootstrapd, --no-ping (without it dnsmasq waits 3 s per new
// address), room for every lease and every TFTP transfer (its defaults, 1,000 leases and 50 transfers,
// would fail boxes for no reason of speed), and no log line per DHCP packet (--quiet-dhcp), as bootstrapd
// logs none either. PXE ROMs get undionly.kpxe by TFTP and iPXE the stage-1 script by HTTP.
func dnsmasqArgs(s netSide, need services, img imageFiles, leaseFile, pidFile, logPath string) []string {
	args := []string{
		"--keep-in-foreground",
		"--conf-file=/dev/null", // never the host's /etc/dnsmasq.conf
		"--port=0",              // no DNS
		"--no-resolv", "--no-hosts",
		"--interface=" + s.iface, "--bind-interfaces",
		"--user=root", "--group=root",
		"--pid-file=" + pidFile,
		"--log-facility=" + logPath,
	}
	if need.dhcp {
		mask := net.IP(net.CIDRMask(s.prefix.Bits(), 32)).String()
		args = append(args,
			"--dhcp-leasefile="+leaseFile,
			"--dhcp-authoritative",
			"--no-ping",
			"--quiet-dhcp",
			fmt.Sprintf("--dhcp-range=%s,%s,%s,1h", s.poolFirst, s.poolLast, mask),
			fmt.Sprintf("--dhcp-lease-max=%d", 2*poolSize),
			"--dhcp-option=option:router,"+s.addr.String(),
			"--dhcp-userclass=set:ipxe,iPXE",
			"--dhcp-boot=tag:!ipxe,"+img.tftpFile+",,"+s.addr.String(),
			fmt.Sprintf("--dhcp-boot=tag:ipxe,http://%s:%d/boot.ipxe", s.addr, httpPort),
		)
	}
	if need.tftp {
		args = append(args, "--enable-tftp", "--tftp-root="+img.tftpDir, "--tftp-max=2048")
	}
	return args
}

// nginxConf is nginx's configuration: the files from one document root, no access log (bootstrapd keeps
// none per request either), sendfile, enough connections and backlog for the storm.
func nginxConf(prefix, www, pidFile, logPath string, listen netip.AddrPort) string {
	return fmt.Sprintf(`worker_processes auto;
worker_rlimit_nofile 16384;
pid %[3]s;
error_log %[4]s warn;
events { worker_connections 8192; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path %[1]s/client_body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[5]s backlog=4096;
        root %[2]s;
        location = /ipxe/machine { default_type text/plain; try_files /machine.ipxe =404; }
        location = /boot.ipxe { default_type text/plain; }
    }
}
`, prefix, www, pidFile, logPath, listen)
}

// makeWWW lays out nginx's document root once: the image files (hard links, or copies across file
// systems), the stage-1 script and a per-machine script like the one bootstrapd gives an approved box.
func (p *peerServer) makeWWW() error {
	if p.www != "" {
		return nil
	}
	www := filepath.Join(p.work, p.tag+"-www")
	imgDir := filepath.Join(www, "images", peerVersion)
	if err := os.MkdirAll(imgDir, 0o755); err != nil {
		return err
	}
	for _, name := range []string{kernelName, initrdName} {
		if err := linkOrCopy(filepath.Join(p.img.dir, name), filepath.Join(imgDir, name)); err != nil {
			return fmt.Errorf("nginx's copy of the image: %w", err)
		}
	}
	f := p.files()
	scripts := map[string]string{
		"boot.ipxe": "#!ipxe\nchain " + f.machineScript + "?mac=${net0/mac}&serial=${serial}\n",
		"machine.ipxe": fmt.Sprintf("#!ipxe\nkernel %s initrd=%s console=ttyS0,115200 onecloud.server=http://%s:%d onecloud.role=vdi onecloud.school=bench\ninitrd %s\nboot\n",
			f.kernel, initrdName, p.net.addr, httpPort, f.initrd),
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(www, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	// nginx's workers run as nobody: every folder on the way must be searchable.
	for d := www; d != p.work && len(d) > 1; d = filepath.Dir(d) {
		_ = os.Chmod(d, 0o755)
	}
	if err := os.Chmod(p.work, 0o755); err != nil {
		return err
	}
	_ = filepath.WalkDir(www, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o755)
		}
		return nil
	})
	p.www = www
	return nil
}

func linkOrCopy(src, dst string) error {
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}
