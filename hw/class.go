package hw

import "slices"

// Classes of box, from classify.
const (
	ClassVM         = "vm"          // a virtual machine (the CPU says "hypervisor")
	ClassServer     = "server"      // a server chassis, or more than one CPU socket
	ClassThinClient = "thin-client" // no fixed disk: boots from the network only
	ClassPC         = "pc"          // anything else: a PC or terminal with a disk
)

// serverChassis are the SMBIOS chassis types of servers: main server
// chassis, rack mount, multi-system, blade and blade enclosure.
var serverChassis = []int{17, 23, 25, 28, 29}

// classify sorts a box into a class by the first rule that holds, in the
// order of the constants above. The class is a hint for the operator and
// for enrolment rules; the cluster, not this guess, decides a box's role.
func classify(inv Inventory) string {
	switch {
	case slices.Contains(inv.CPU.Flags, "hypervisor"):
		return ClassVM
	case slices.Contains(serverChassis, inv.DMI.ChassisType) || inv.CPU.Sockets > 1:
		return ClassServer
	case !slices.ContainsFunc(inv.Disks, func(d Disk) bool { return !d.Removable }):
		return ClassThinClient
	}
	return ClassPC
}
