// Package hw takes the hardware inventory of a box: what the firmware shows
// on its status screen and presents to the cluster when the box enrols.
//
// Collect reads only files below a root directory (its sys and proc), never
// the devices themselves, so tests feed it trees recorded from real machines
// (testdata/, made with hw/cmd/hwrecord) and the firmware feeds it "/". The
// one thing sysfs does not show, the manufacturer of a TPM 2.0, is asked
// from the TPM by TPMManufacturer and added with SetTPMManufacturer.
//
// The inventory is best effort: a file that is malformed or unreadable
// costs only the fields it feeds. Collect returns everything else together
// with an error naming each bad file, and the same messages travel in
// Inventory.Problems so that the cluster sees them too.
//
// The JSON form is a stable schema, documented in docs/inventory.md: within
// schema 1 fields are only ever added, never renamed, removed or given a new
// meaning.
package hw

import "errors"

// Schema is the version of the JSON schema of Inventory.
const Schema = 1

// Inventory is the hardware of one box.
type Inventory struct {
	Schema int `json:"schema"` // always Schema
	// Class is a rough kind of box: "vm", "server", "thin-client" or "pc"
	// (see class.go for the rules).
	Class  string `json:"class"`
	DMI    DMI    `json:"dmi"`
	CPU    CPU    `json:"cpu"`
	Memory Memory `json:"memory"`
	Disks  []Disk `json:"disks"` // sorted by name; empty, not null, when there are none
	NICs   []NIC  `json:"nics"`  // sorted by name; empty, not null, when there are none
	TPM    TPM    `json:"tpm"`
	// Problems lists the files that could not be read or understood, one
	// message each, naming the file: the same messages as Collect's error.
	Problems []string `json:"problems,omitempty"`
}

// Collect takes the inventory of the machine whose /sys and /proc are
// below root ("/" for the running machine). It always returns what it could
// read. The error, made with errors.Join, holds one *fs.PathError per file
// that could not be read or understood; things a machine may simply lack
// (DMI tables, a TPM, disks, NICs) are not errors.
func Collect(root string) (Inventory, error) {
	if root == "" {
		root = "/"
	}
	s := &source{root: root}
	inv := Inventory{
		Schema: Schema,
		DMI:    readDMI(s),
		CPU:    readCPU(s),
		Memory: readMemory(s),
		Disks:  readDisks(s),
		NICs:   readNICs(s),
		TPM:    readTPM(s),
	}
	inv.Class = classify(inv)
	for _, p := range s.problems {
		inv.Problems = append(inv.Problems, p.Error())
	}
	return inv, errors.Join(s.problems...)
}
