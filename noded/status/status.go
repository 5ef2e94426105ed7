// Package status gathers what noded reports about its node: release,
// hostname, uptime, hardware inventory, interfaces and service states.
//
// Everything is read below a root directory so that tests can feed a
// recorded tree; only the interface list comes from the kernel, through an
// injected function.
package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/onecloud-edu/onecloud/hw"
	"github.com/onecloud-edu/onecloud/internal/release"
	"github.com/onecloud-edu/onecloud/noded/localapi"
)

// Gatherer builds the node's status.
type Gatherer struct {
	// Root is "/" on a box.
	Root string
	// Interfaces lists the network interfaces (Netlink on a box).
	Interfaces func() ([]localapi.Interface, error)
	// Hostname returns the host name (os.Hostname on a box).
	Hostname func() (string, error)
}

// Status gathers the status now. What cannot be read is named in
// Status.Problems; the rest is still returned.
func (g *Gatherer) Status(ctx context.Context) localapi.Status {
	var s localapi.Status
	problem := func(what string, err error) {
		s.Problems = append(s.Problems, fmt.Sprintf("%s: %v", what, err))
	}

	rel, err := release.Read(g.Root)
	if err != nil {
		problem("release", err)
	}
	s.Release = rel

	if s.Hostname, err = g.Hostname(); err != nil {
		problem("hostname", err)
	}
	if s.UptimeSec, err = uptime(g.Root); err != nil {
		problem("uptime", err)
	}

	inv, err := g.inventory()
	if err != nil {
		problem("inventory", err)
	}
	s.Inventory = inv

	if s.Interfaces, err = g.Interfaces(); err != nil {
		problem("interfaces", err)
	}
	if s.Services, err = services(g.Root); err != nil {
		problem("services", err)
	}
	return s
}

// inventory prefers the one the firmware took at boot (it also asked the TPM
// for its manufacturer); without it, noded takes its own from sysfs.
func (g *Gatherer) inventory() (*hw.Inventory, error) {
	b, err := os.ReadFile(filepath.Join(g.Root, localapi.InventoryPath))
	if err == nil {
		var inv hw.Inventory
		if err := json.Unmarshal(b, &inv); err != nil {
			return nil, fmt.Errorf("%s is not valid JSON: %w", localapi.InventoryPath, err)
		}
		return &inv, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	inv, err := hw.Collect(g.Root)
	return &inv, err
}

func uptime(root string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(root, "proc/uptime"))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/uptime is empty")
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/uptime: %w", err)
	}
	return v, nil
}

// services reads the supervisor's published states. Its absence is normal
// when noded runs outside the firmware (a developer's machine).
func services(root string) ([]localapi.Service, error) {
	b, err := os.ReadFile(filepath.Join(root, localapi.ServicesPath))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []localapi.Service
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", localapi.ServicesPath, err)
	}
	return out, nil
}
