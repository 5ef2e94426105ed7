package hw

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// TPMManufacturer asks a TPM 2.0 for its manufacturer (the property
// TPM_PT_MANUFACTURER of TPM2_GetCapability) and returns the vendor ID, such
// as "IFX", "NTC" or "IBM" (which software TPMs report). Sysfs does not show
// it for TPM 2.0, so the firmware calls this with the TPM it opened
// (/dev/tpmrm0) and stores the answer with Inventory.SetTPMManufacturer.
//
// The call is one short command; go-tpm's transports take no context, so a
// TPM that hangs hangs the caller: call it before the network work starts.
func TPMManufacturer(t transport.TPM) (string, error) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTManufacturer),
		PropertyCount: 1,
	}.Execute(t)
	if err != nil {
		return "", fmt.Errorf("ask the TPM for its manufacturer (TPM2_GetCapability): %w", err)
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return "", fmt.Errorf("TPM answered the manufacturer question with the wrong kind of data: %w", err)
	}
	// A TPM answers with the properties from the one asked for onwards, so
	// the first one is ours only if its tag says so.
	if len(props.TPMProperty) == 0 || props.TPMProperty[0].Property != tpm2.TPMPTManufacturer {
		return "", errors.New("TPM did not report TPM_PT_MANUFACTURER: is it a TPM 2.0?")
	}
	return vendorID(props.TPMProperty[0].Value), nil
}
