package bootstrap

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/bootstrap/enrolapi"
	"github.com/onecloud-edu/onecloud/bootstrap/machines"
)

// fixedBackend answers every sighting with one machine.
type fixedBackend struct{ m machines.Machine }

func (f fixedBackend) Seen(_ context.Context, s machines.Sighting, _ time.Time) (machines.Machine, error) {
	m := f.m
	m.ID = machines.IDFor(s.MAC)
	return m, nil
}

func TestEnrolOnCluster(t *testing.T) {
	cluster := enrolapi.Cluster{API: "https://10.77.1.1:9443", CA: "-----BEGIN CERTIFICATE-----\n..."}
	req := enrolapi.Request{BootMAC: "52:54:00:12:34:56", Role: "vdi"}
	from := netip.MustParseAddr("10.77.1.100")
	for _, tc := range []struct {
		name        string
		m           machines.Machine
		cluster     *enrolapi.Cluster
		wantCluster bool
		wantMessage string
	}{
		{"approved on the cluster learns where to attest", machines.Machine{State: enrolapi.Approved, Role: "vdi"}, &cluster, true, ""},
		{"pending on the cluster is told about occtl", machines.Machine{State: enrolapi.Pending}, &cluster, false, "occtl approve oc-525400123456"},
		{"rejected on the cluster learns nothing of it", machines.Machine{State: enrolapi.Rejected, Reason: "stolen"}, &cluster, false, "stolen"},
		{"approved on the file inbox has no cluster", machines.Machine{State: enrolapi.Approved, Role: "vdi"}, nil, false, ""},
		{"pending on the file inbox is told about bootstrapd", machines.Machine{State: enrolapi.Pending}, nil, false, "bootstrapd machines approve"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := backendAdapter{fixedBackend{tc.m}, tc.cluster}.Enrol(context.Background(), req, from)
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Cluster != nil; got != tc.wantCluster {
				t.Fatalf("cluster in the answer: %v, want %v (%+v)", got, tc.wantCluster, resp)
			}
			if tc.wantCluster && *resp.Cluster != cluster {
				t.Errorf("cluster %+v, want %+v", *resp.Cluster, cluster)
			}
			if !strings.Contains(resp.Message, tc.wantMessage) {
				t.Errorf("message %q does not contain %q", resp.Message, tc.wantMessage)
			}
		})
	}
}

func TestNewOnClusterRefusesDeclaredMachines(t *testing.T) {
	c := OnCluster{Backend: fixedBackend{}, Cluster: enrolapi.Cluster{API: "https://10.77.1.1:9443", CA: "pem"}}
	cfg := Config{Machines: []machines.Declared{{MAC: "52:54:00:00:00:02", Role: "server"}}}
	_, err := NewOnCluster(cfg, Paths{State: t.TempDir()}, c, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "occtl declare") {
		t.Fatalf("NewOnCluster with declared machines in the file: %v, want a refusal naming occtl declare", err)
	}
	_, err = NewOnCluster(Config{}, Paths{State: t.TempDir()}, OnCluster{Backend: fixedBackend{}}, slog.New(slog.DiscardHandler))
	if err == nil {
		t.Fatal("NewOnCluster without the cluster's API and CA: no error")
	}
}
