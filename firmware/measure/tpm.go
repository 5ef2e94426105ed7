package measure

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
)

// Device is a TPM 2.0 reached through a go-tpm transport: /dev/tpmrm0 on a
// box (OpenLinux), swtpm over TCP in tests. go-tpm's commands take no
// context, so ctx is checked before each command.
type Device struct {
	TPM transport.TPM
}

// OpenLinux opens the kernel's TPM: the resource manager /dev/tpmrm0, which
// other processes (noded) may use at the same time, else /dev/tpm0, which
// is exclusive: close it soon.
func OpenLinux() (transport.TPMCloser, error) {
	var errs []error
	for _, dev := range []string{"/dev/tpmrm0", "/dev/tpm0"} {
		t, err := linuxtpm.Open(dev)
		if err == nil {
			return t, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("open the TPM: %w", errors.Join(errs...))
}

// Banks asks the TPM which PCR banks are allocated (TPM2_GetCapability,
// TPM_CAP_PCRS) and returns those in which pcr is selected.
func (d Device) Banks(ctx context.Context, pcr int) ([]uint16, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The reference TPM returns the whole allocation for any count above 0.
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapPCRs, PropertyCount: 1}.Execute(d.TPM)
	if err != nil {
		return nil, fmt.Errorf("TPM2_GetCapability(PCRS): %w", err)
	}
	sel, err := rsp.CapabilityData.Data.AssignedPCR()
	if err != nil {
		return nil, fmt.Errorf("TPM2_GetCapability(PCRS): %w", err)
	}
	var ids []uint16
	for _, s := range sel.PCRSelections {
		if pcr/8 < len(s.PCRSelect) && s.PCRSelect[pcr/8]&(1<<(pcr%8)) != 0 {
			ids = append(ids, uint16(s.Hash))
		}
	}
	return ids, nil
}

// Extend extends pcr in the banks of digests with one TPM2_PCR_Extend.
func (d Device) Extend(ctx context.Context, pcr int, digests map[crypto.Hash][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var vals []tpm2.TPMTHA
	for h, dig := range digests {
		id, ok := algID(h)
		if !ok {
			return fmt.Errorf("no TPM algorithm for %v", h)
		}
		vals = append(vals, tpm2.TPMTHA{HashAlg: tpm2.TPMAlgID(id), Digest: dig})
	}
	slices.SortFunc(vals, func(a, b tpm2.TPMTHA) int { return int(a.HashAlg) - int(b.HashAlg) })
	_, err := tpm2.PCRExtend{
		PCRHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(pcr), Auth: tpm2.PasswordAuth(nil)},
		Digests:   tpm2.TPMLDigestValues{Digests: vals},
	}.Execute(d.TPM)
	if err != nil {
		return fmt.Errorf("TPM2_PCR_Extend(%d): %w", pcr, err)
	}
	return nil
}

// Read returns the value of pcr in the bank of h (TPM2_PCR_Read).
func (d Device) Read(ctx context.Context, pcr int, h crypto.Hash) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	id, ok := algID(h)
	if !ok {
		return nil, fmt.Errorf("no TPM algorithm for %v", h)
	}
	rsp, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{
		Hash: tpm2.TPMAlgID(id), PCRSelect: tpm2.PCClientCompatible.PCRs(uint(pcr)),
	}}}}.Execute(d.TPM)
	if err != nil {
		return nil, fmt.Errorf("TPM2_PCR_Read(%d, %v): %w", pcr, h, err)
	}
	if len(rsp.PCRValues.Digests) != 1 {
		return nil, fmt.Errorf("TPM2_PCR_Read(%d, %v): the TPM returned %d values; is the bank allocated?", pcr, h, len(rsp.PCRValues.Digests))
	}
	return rsp.PCRValues.Digests[0].Buffer, nil
}
