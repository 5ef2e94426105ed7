package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/onecloud-edu/onecloud/bootstrap"
	"github.com/onecloud-edu/onecloud/bootstrap/classify"
	"github.com/onecloud-edu/onecloud/bootstrap/dhcpd"
)

func TestStatsOverSocket(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "admin.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	want := bootstrap.Stats{DHCP: &dhcpd.Stats{
		Requests: map[classify.Class]uint64{classify.IPXE: 7, classify.Other: 3}, Offers: 5, Acks: 4, Malformed: 2,
	}}
	want.TFTP.Completed = 9
	want.HTTP.Busy = 11
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != bootstrap.StatsPath {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(want)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"stats", "-socket", socket}, &out, &errOut); err != nil {
		t.Fatalf("stats: %v (%s)", err, errOut.String())
	}
	for _, line := range []string{
		`requests from ipxe\s+7`, `requests from other\s+3`, `malformed\s+2`, `transfers completed\s+9`, `busy \(503\)\s+11`,
	} {
		if !regexp.MustCompile(line).MatchString(out.String()) {
			t.Errorf("stats table lacks %q:\n%s", line, out.String())
		}
	}

	out.Reset()
	if err := run(context.Background(), []string{"stats", "-json", "-socket", socket}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var got bootstrap.Stats
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.DHCP == nil || got.DHCP.Requests[classify.IPXE] != 7 {
		t.Errorf("stats -json = %s (%v)", out.String(), err)
	}
}

func TestStatsNoServer(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"stats", "-socket", filepath.Join(t.TempDir(), "none.sock")}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "bootstrapd serve") {
		t.Fatalf("stats without a server: %v", err)
	}
}
