// Command hwinfo prints the hardware inventory of this machine, or of a
// recorded tree, as a table or as JSON (the schema of docs/inventory.md).
//
//	hwinfo                 # this machine, as a table
//	hwinfo -json           # this machine, as JSON
//	hwinfo -root DIR       # a tree recorded with hwrecord
//
// On the running machine (-root /) hwinfo also asks a TPM 2.0 for its
// manufacturer through /dev/tpmrm0, as the firmware does; -tpm=false skips
// that.
//
// Files that cannot be read or understood are reported on stderr, and the
// rest of the inventory is still printed. hwinfo exits with status 1 only
// when it could read nothing at all (a wrong -root), 2 on bad usage.
// Run it as root: the DMI serial number and UUID are readable by root only.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/onecloud-edu/onecloud/hw"
)

func main() {
	root := flag.String("root", "/", "root of the machine: its sys and proc are read")
	asJSON := flag.Bool("json", false, "print JSON instead of a table")
	askTPM := flag.Bool("tpm", true, "with -root /: ask a TPM 2.0 for its manufacturer through "+tpmDevice)
	flag.Parse()
	if flag.NArg() != 0 {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(*root, *asJSON, *askTPM && filepath.Clean(*root) == "/", os.Stdout, os.Stderr))
}

// tpmDevice is the kernel's TPM resource manager, which lets several
// programs use the TPM at once.
const tpmDevice = "/dev/tpmrm0"

// run prints the inventory of root to stdout and problems to stderr, and
// returns the exit status.
func run(root string, asJSON, askTPM bool, stdout, stderr io.Writer) int {
	inv, err := hw.Collect(root)
	if askTPM && inv.TPM.Present && inv.TPM.Version == "2.0" && inv.TPM.Manufacturer == "" {
		if err := tpmManufacturer(&inv); err != nil {
			fmt.Fprintf(stderr, "hwinfo: TPM manufacturer unknown: %v\n", err)
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "hwinfo: some of the inventory is missing:\n%v\n", err)
		if errors.Is(err, fs.ErrPermission) {
			fmt.Fprintln(stderr, "hwinfo: some files are readable by root only: run hwinfo as root")
		}
	}
	if nothing(inv) {
		fmt.Fprintf(stderr, "hwinfo: nothing could be read below %s: is it the root of a Linux machine (with sys and proc)?\n", root)
		return 1
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(inv)
	} else {
		err = inv.Table(stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hwinfo: %v\n", err)
		return 1
	}
	return 0
}

// tpmManufacturer asks the machine's TPM 2.0 for its manufacturer.
func tpmManufacturer(inv *hw.Inventory) error {
	tpm, err := linuxtpm.Open(tpmDevice)
	if err != nil {
		return err
	}
	defer tpm.Close()
	id, err := hw.TPMManufacturer(tpm)
	if err != nil {
		return err
	}
	inv.SetTPMManufacturer(id)
	return nil
}

// nothing reports whether the inventory holds no fact at all.
func nothing(inv hw.Inventory) bool {
	return inv.DMI == hw.DMI{} && inv.CPU.Threads == 0 && inv.Memory.TotalBytes == 0 &&
		len(inv.Disks) == 0 && len(inv.NICs) == 0 && !inv.TPM.Present
}
