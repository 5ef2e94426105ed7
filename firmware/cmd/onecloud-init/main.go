// Command onecloud-init is the onecloud firmware: the program u-root's init
// hands the box over to (its "uinit").
//
// It runs the boot flow of docs/boot.md in order: mount what is missing,
// print the banner, load the drivers the devices ask for, take the hardware
// inventory, start the supervised services (noded first), bring every NIC
// onto the network, enrol with the bootstrap server, and keep a one-screen
// status on the console. When the box has an address and noded answers it
// prints "onecloud: ready" (approval is not waited for: a pending box is
// ready, and says it waits). Nothing here
// stops the boot: a missing driver, a dead TPM or a silent DHCP server is
// shown on the status screen, logged, and retried where retrying helps.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/onecloud-edu/onecloud/firmware/cmdline"
	"github.com/onecloud-edu/onecloud/firmware/power"
)

func main() {
	// u-root's init gives us the console(s) as stdout and stderr.
	console := os.Stdout
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		fmt.Fprintf(console, "onecloud: cannot read /proc/cmdline (%v); booting on defaults\n", err)
	}
	opts, warnings := cmdline.Parse(string(raw))

	log := slog.New(slog.NewTextHandler(console, &slog.HandlerOptions{Level: level(opts.LogLevel)}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	b := &boot{opts: opts, cmdline: string(raw), console: console, log: log, reenrol: make(chan struct{}, 1)}
	for _, w := range warnings {
		b.note("kernel command line: %s", w)
	}
	if err := b.run(ctx); err != nil {
		// Reaching here means the boot flow itself is broken; u-root's init
		// then starts a shell on the console, which is what a technician needs.
		log.Error("firmware stopped", "err", err)
		os.Exit(1)
	}
	// The services have stopped; now the box may go down.
	switch {
	case b.powerOff.Load():
		fmt.Fprintln(console, "onecloud: power off")
		if err := power.Off(); err != nil {
			log.Error("power off failed", "err", err)
			os.Exit(1)
		}
	case b.reboot.Load():
		fmt.Fprintln(console, "onecloud: reboot")
		if err := power.Reboot(); err != nil {
			log.Error("reboot failed; reboot the box by hand to take its new role", "err", err)
			os.Exit(1)
		}
	}
}

func level(s string) slog.Level {
	switch s {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
