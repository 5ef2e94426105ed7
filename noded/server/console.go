package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/internal/pinhash"
	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/cluster"
)

// consoleKey names the one record of the console settings.
const consoleKey = "console"

// consoleSettings reads the console settings; none set yet is not an error.
func (s *Server) consoleSettings(ctx context.Context) (api.ConsoleSettings, error) {
	cs, _, err := s.state.console.Get(ctx, consoleKey)
	if errors.Is(err, cluster.ErrNotFound) {
		return api.ConsoleSettings{}, nil
	}
	return cs, err
}

func (s *Server) showConsole(w http.ResponseWriter, r *http.Request, _ string) {
	cs, err := s.consoleSettings(r.Context())
	s.reply(w, r, cs, err)
}

// setConsole changes the console settings; a field left empty keeps its
// value. Only a PIN's hash is accepted: occtl hashes the PIN on the
// technician's machine.
func (s *Server) setConsole(w http.ResponseWriter, r *http.Request, caller string) {
	var req api.ConsoleSettings
	if err := s.readJSON(w, r, maxAdminBody, &req); err != nil {
		writeError(w, err)
		return
	}
	if req.PINHash != "" {
		if _, err := pinhash.Parse(req.PINHash); err != nil {
			writeError(w, badRequest("pin_hash: %v (occtl console set-pin makes one)", err))
			return
		}
	}
	if req.Lang != "" && req.Lang != "zh" && req.Lang != "en" {
		writeError(w, badRequest(`lang: want "zh" or "en"`))
		return
	}
	cs, err := update(r.Context(), s.state.console, consoleKey, func(cs *api.ConsoleSettings, _ bool) error {
		if req.PINHash != "" {
			cs.PINHash = req.PINHash
		}
		if req.Lang != "" {
			cs.Lang = req.Lang
		}
		cs.SetBy, cs.SetAt = caller, s.now().UTC()
		return nil
	})
	if err == nil {
		// The hash is not logged: it would let anyone with the log try PINs offline.
		s.log.Info("console settings changed", "by", caller, "pin_changed", req.PINHash != "", "lang", cs.Lang)
	}
	s.reply(w, r, cs, err)
}

// Console is what an approved box's enrolment answer says about its node
// console (bootstrap's optional ConsoleSettings of a backend).
func (s *Server) Console(ctx context.Context) (*enrolapi.Console, error) {
	cs, err := s.consoleSettings(ctx)
	if err != nil || (cs.PINHash == "" && cs.Lang == "") {
		return nil, err
	}
	return &enrolapi.Console{PINHash: cs.PINHash, Lang: cs.Lang}, nil
}
