package main

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"

	"github.com/onecloud-edu/onecloud/noded/join"
	"github.com/onecloud-edu/onecloud/noded/nodecert"
	"github.com/onecloud-edu/onecloud/noded/pki"
)

// serverCertKeeper keeps this server node's cluster API certificate (24 h)
// fresh while it serves: the node that holds the cluster CA's keys issues
// its own, a node that joined attests again through the API it joined by.
// It returns nil, and says why in the log, when it cannot: the member goes
// on serving with its certificate until that expires, since the cluster
// store matters more than one node's API.
func serverCertKeeper(f serverFlags, ca *pki.CA, open OpenTPM, log *slog.Logger) (keeper *nodecert.Keeper, closeTPM func()) {
	log = log.With("component", "nodecert")
	cfg := nodecert.Config{Name: f.name, Dir: pki.Dir(f.state), Logger: log}
	closeTPM = func() {}
	if ca.CanIssue() {
		cfg.Local, cfg.IPs = ca, []net.IP{net.ParseIP(f.addr)}
	} else {
		err := func() error {
			server, err := join.ReadServer(f.state)
			if err != nil {
				return err
			}
			serial, err := boardSerial(f.serial)
			if err != nil {
				return err
			}
			tpm, err := open(f.tpm)
			if err != nil {
				return fmt.Errorf("open the TPM %s (-tpm): %w", f.tpm, err)
			}
			closeTPM = func() { tpm.Close() }
			cfg.Server, cfg.Root, cfg.Serial, cfg.EventLog, cfg.TPM = server, ca.Root, serial, f.eventLog, tpm
			return nil
		}()
		if err != nil {
			log.Error("this node's certificate will NOT be renewed, and its cluster API stops answering when it expires: restart noded once fixed", "err", err)
			return nil, closeTPM
		}
	}
	k, err := nodecert.New(cfg)
	if err != nil {
		log.Error("this node's certificate will NOT be renewed", "err", err)
		closeTPM()
		return nil, func() {}
	}
	return k, closeTPM
}

// current is what the cluster API serves: the keeper's certificate once it
// has one.
func current(k *nodecert.Keeper) func() *tls.Certificate {
	if k == nil {
		return nil
	}
	return k.Certificate
}
