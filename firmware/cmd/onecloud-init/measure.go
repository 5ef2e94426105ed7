package main

import (
	"context"
	"fmt"

	"github.com/onecloud-edu/onecloud/firmware/measure"
)

// measureBoot records in the TPM's PCR 13 what this boot runs and the
// configuration that decides its role, with the event log at
// measure.LogPath (docs/measured-boot.md). It runs once the inventory knows
// whether there is a TPM, and before noded starts, which sends the log with
// its quote. Nothing here stops the boot: a box without a TPM runs, and its
// status screen says it cannot attest.
func (b *boot) measureBoot(ctx context.Context) {
	if !b.inv.TPM.Present {
		b.note("no TPM: boot measurements skipped; this box runs but cannot attest")
		return
	}
	dev, err := measure.OpenLinux()
	if err != nil {
		b.note("boot measurements skipped, this box cannot attest: %v", err)
		return
	}
	// Closed once measured: /dev/tpm0, the fallback, admits one process at
	// a time, and noded needs the TPM next.
	defer dev.Close()
	m, err := measure.NewMeasurer(ctx, measure.Device{TPM: dev}, measure.LogPath, b.log)
	if err != nil {
		b.note("boot measurements skipped, this box cannot attest: %v", err)
		return
	}
	role := measure.Role{ID: b.opts.ID, Role: b.opts.Role, School: b.opts.School, Server: b.opts.Server}
	for _, s := range []struct {
		what    string
		measure func() error
	}{
		// For a PXE boot this is the image vouching for itself; the loader
		// measures a slot before it kexecs it, which is the real chain.
		{"image " + measure.ReleaseImage, func() error { return m.MeasureFile(ctx, measure.ReleaseImage, measure.ReleaseImage) }},
		{"role configuration", func() error { return m.MeasureData(ctx, measure.RoleKind, role.Canonical()) }},
	} {
		if err := s.measure(); err != nil {
			b.note("cannot measure %s, attestation of this boot will fail: %v", s.what, err)
			continue
		}
		fmt.Fprintf(b.console, "onecloud: measured %s into PCR %d\n", s.what, measure.PCR)
	}
	if err := m.Check(ctx); err != nil {
		b.note("%v", err)
	}
}
