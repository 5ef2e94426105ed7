package image

import (
	_ "embed"
	"path"
)

// Profile says what goes into one kind of image. The lists below are the one
// place where the image's commands are named.
type Profile struct {
	// Name is "onecloud" or "bare", as the manifest records it.
	Name string
	// OutDir is the default output directory below the repository's out/.
	OutDir string
	// Commands are Go command packages (or u-root globs such as
	// ".../cmds/core/*") compiled together into one busybox binary, bbin/bb.
	Commands []string
	// Init is the command linked to /init, Uinit the one u-root's init
	// starts after setting up the system, with UinitArgs, and Shell the
	// one it starts when the uinit exits (/bin/sh).
	Init, Uinit string
	UinitArgs   []string
	Shell       string
	// Modules ships the kernel modules named in modules.txt with their
	// dependencies.
	Modules bool
}

const (
	module = "github.com/onecloud-edu/onecloud"
	uroot  = "github.com/u-root/u-root/cmds/core/"
)

// Onecloud is the image every box boots.
func Onecloud() Profile {
	// Our own programs. onecloud-init is the firmware that u-root's init
	// hands over to; it starts noded and the node console.
	cmds := []string{
		module + "/firmware/cmd/onecloud-init",
		module + "/firmware/cmd/onecloud-console",
		module + "/noded/cmd/noded",
	}
	// u-root's init and shell, and the few tools a technician at the
	// console shell needs to look around a box that does not come up.
	for _, tool := range []string{
		"init", "gosh",
		"ls", "cat", "cp", "mv", "rm", "mkdir", "ln", "grep",
		"mount", "umount", "df", "free", "uname", "dmesg", "lsmod",
		"ps", "kill", "ip", "ping", "shutdown",
	} {
		cmds = append(cmds, uroot+tool)
	}
	return Profile{
		Name:     "onecloud",
		OutDir:   "image",
		Commands: cmds,
		Init:     "init",
		Uinit:    "onecloud-init",
		Shell:    "gosh",
		Modules:  true,
	}
}

// BareMarker is the line the bare image prints on the console when u-root's
// init reaches its uinit: boot benchmarks time the onecloud image's
// "onecloud: ready" against it.
const BareMarker = "bare: uinit reached"

// Bare is the reference image for boot benchmarks: the same kernel and
// u-root's whole core command set, but no onecloud commands and no modules,
// and a uinit that only prints BareMarker (u-root's echo).
func Bare() Profile {
	return Profile{
		Name:      "bare",
		OutDir:    "bare",
		Commands:  []string{uroot + "*"},
		Init:      "init",
		Uinit:     "echo",
		UinitArgs: []string{BareMarker},
		Shell:     "gosh",
	}
}

// commandName is the name a command package gets in the busybox: the last
// element of its path, as u-root's builder does it.
func commandName(pkg string) string {
	return path.Base(pkg)
}

// wantedModules is the list of kernel modules the onecloud image carries;
// see the file's own comments.
//
//go:embed modules.txt
var wantedModules string
