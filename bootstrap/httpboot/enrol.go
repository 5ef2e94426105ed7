package httpboot

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
)

// maxEnrolBody caps an enrolment request: a whole hardware inventory is a
// few kilobytes, so a megabyte is generous and still bounds memory.
const maxEnrolBody = 1 << 20

// enrol takes a box's enrolment and returns the backend's answer. Unknown
// JSON fields are accepted, so that a newer firmware can talk to an older
// server.
func (h *Handler) enrol(w http.ResponseWriter, r *http.Request) {
	addr := remoteAddr(r)
	r.Body = http.MaxBytesReader(w, r.Body, maxEnrolBody)
	var req enrolapi.Request
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		h.bad.Add(1)
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.log.Warn("enrolment request too large", h.who(r)...)
			http.Error(w, "enrolment request larger than 1 MiB", http.StatusRequestEntityTooLarge)
			return
		}
		h.log.Warn("malformed enrolment request", append(h.who(r), "err", err)...)
		http.Error(w, "malformed enrolment request (want enrolapi.Request as JSON): "+err.Error(), http.StatusBadRequest)
		return
	}
	mac, err := net.ParseMAC(req.BootMAC)
	if err != nil || len(mac) != 6 {
		h.bad.Add(1)
		h.log.Warn("enrolment without a valid boot MAC", "addr", addr, "boot_mac", clip(req.BootMAC, 40))
		http.Error(w, "enrolment request: boot_mac "+clip(req.BootMAC, 40)+" is not an Ethernet MAC address", http.StatusBadRequest)
		return
	}
	req.BootMAC = mac.String()
	log := h.log.With("mac", req.BootMAC, "addr", addr)
	h.remember(addr, req.BootMAC)

	resp, err := h.cfg.Machines.Enrol(r.Context(), req, addr)
	if err != nil {
		log.Error("enrolment failed; the box will ask again", "err", err)
		http.Error(w, "the boot server could not handle this enrolment now; ask again later", http.StatusInternalServerError)
		return
	}
	b, err := json.Marshal(resp)
	if err != nil {
		log.Error("cannot encode the enrolment answer", "err", err)
		http.Error(w, "the boot server could not encode its answer", http.StatusInternalServerError)
		return
	}
	h.enrolments.Add(1)
	log.Info("enrolment", "id", resp.ID, "state", resp.State, "role", resp.Role, "reboot", resp.Reboot)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(append(b, '\n'))
}
