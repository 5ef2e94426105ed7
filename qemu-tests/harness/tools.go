package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// requireRoot fails early and plainly: network namespaces, bridges and taps need root.
func requireRoot() error {
	if os.Geteuid() != 0 {
		return errors.New("the QEMU lab needs root (it makes network namespaces, bridges and taps): run the tests as root, e.g. `sudo make test`")
	}
	return nil
}

// lookTool finds a program the harness runs, also in the sbin folders a non-login PATH may miss, and
// says which Debian package provides it when it is missing.
func lookTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s is not installed: run `make deps` or `apt-get install %s`", name, debianPackage(name))
}

// requireFile checks a data file the harness passes to QEMU (firmware, NIC ROMs).
func requireFile(path string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("%s is missing: run `make deps` or `apt-get install %s`", path, debianPackage(path))
	}
	return nil
}

// debianPackage names the Debian package that ships a tool or file the harness uses.
func debianPackage(name string) string {
	switch {
	case name == "qemu-system-x86_64":
		return "qemu-system-x86"
	case name == "qemu-img":
		return "qemu-utils"
	case name == "swtpm":
		return "swtpm"
	case name == "dnsmasq":
		return "dnsmasq-base"
	case name == "ip":
		return "iproute2"
	case filepath.Dir(name) == ipxeROMDir:
		return "ipxe-qemu"
	case filepath.Dir(name) == filepath.Dir(ovmfCode):
		return "ovmf"
	}
	return "the package that provides " + name
}
