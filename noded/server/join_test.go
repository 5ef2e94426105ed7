package server_test

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"testing"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/pki"
	"github.com/onecloud-edu/onecloud/noded/server/servertest"
)

// Only a machine approved as a server node that asks for one gets an etcd
// member certificate, with what it needs to join; nobody else does.
func TestJoinKit(t *testing.T) {
	e := servertest.Start(t)
	e.Release(t, "1.0", releasedKernel)
	admin := e.Client(t, &e.Admin)
	tests := []struct {
		role     api.Role
		peerCSR  bool
		wantPeer bool
	}{
		{api.RoleServer, true, true},
		{api.RoleServer, false, false},
		{api.RoleVDI, true, false},
		{api.RoleTCI, true, false},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprintf("%s/csr=%v", tt.role, tt.peerCSR), func(t *testing.T) {
			ctx := context.Background()
			b := servertest.NewBox(t, tpms, fmt.Sprintf("52:54:00:00:10:%02x", i), fmt.Sprintf("SN-JOIN-%d", i), releasedKernel)
			b.Enrol(t, e)
			if _, err := admin.Approve(ctx, b.ID, api.ApproveRequest{Role: tt.role, EKHash: b.EKHash(t)}); err != nil {
				t.Fatal(err)
			}
			csr, err := pki.NewCSR(b.Key, b.ID)
			if err != nil {
				t.Fatal(err)
			}
			a := api.Attestation{Client: e.Client(t, nil), CSR: csr}
			if tt.peerCSR {
				k, err := pki.NewKey()
				if err != nil {
					t.Fatal(err)
				}
				if a.PeerCSR, err = pki.NewCSR(k, "whatever-it-claims"); err != nil {
					t.Fatal(err)
				}
			}
			res, err := b.AttestWith(ctx, a)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.NodeCertificate) == 0 {
				t.Error("no node certificate")
			}
			if got := len(res.PeerCertificate) > 0; got != tt.wantPeer {
				t.Fatalf("peer certificate issued = %v, want %v", got, tt.wantPeer)
			}
			if !tt.wantPeer {
				if len(res.EtcdEndpoints) != 0 || len(res.EtcdCACertificate) != 0 || len(res.CACertificate) != 0 {
					t.Errorf("join material without a peer certificate: %+v", res)
				}
				return
			}
			peer, err := x509.ParseCertificate(res.PeerCertificate)
			if err != nil {
				t.Fatal(err)
			}
			// Named after the approved machine, at the address it
			// attested from, from the etcd CA only.
			if err := pki.Verify(e.CA.Roots(pki.Peer), []*x509.Certificate{peer}, pki.Peer, e.Clock.Now()); err != nil {
				t.Error(err)
			}
			if peer.Subject.CommonName != b.ID || len(peer.IPAddresses) == 0 || !peer.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
				t.Errorf("peer certificate names %q %v", peer.Subject.CommonName, peer.IPAddresses)
			}
			if err := pki.Verify(e.CA.Roots(pki.Node), []*x509.Certificate{peer}, pki.Node, e.Clock.Now()); err == nil {
				t.Error("the peer certificate passes as a node certificate")
			}
			if !e.CA.Etcd.Equal(mustParse(t, res.EtcdCACertificate)) || !e.CA.Root.Equal(mustParse(t, res.CACertificate)) {
				t.Error("CA certificates are not the cluster's")
			}
			st, err := e.Member.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(res.EtcdEndpoints) != 1 || res.EtcdEndpoints[0] != st.Members[0].ClientURLs[0] {
				t.Errorf("endpoints %v, want the member's %v", res.EtcdEndpoints, st.Members[0].ClientURLs)
			}
		})
	}
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
