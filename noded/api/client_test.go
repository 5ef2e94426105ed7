package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct {
		route string
		args  []string
		want  string
	}{
		{NodesRoute, nil, "/v1/nodes"},
		{MachineRoute, []string{"oc-525400123456"}, "/v1/machines/oc-525400123456"},
		{ApproveRoute, []string{"52:54:00:12:34:56"}, "/v1/machines/52:54:00:12:34:56/approve"},
		{RemoveNodeRoute, []string{"../x y"}, "/v1/nodes/..%2Fx%20y"},
		{ChallengeRoute, nil, ChallengePath},
	} {
		if got := Path(tc.route, tc.args...); got != tc.want {
			t.Errorf("Path(%q, %q) = %q, want %q", tc.route, tc.args, got, tc.want)
		}
	}
}

// The client turns answers into the errors callers test for: a refused
// challenge into a *Refusal, any other failure into a *StatusError.
func TestClientErrors(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case ChallengePath:
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte(`{"reason":"not-approved","text":"approve it first"}`))
		case "/v1/nodes":
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"error":"needs a certificate"}`))
		case "/v1/machines":
			w.Write([]byte(`not json`))
		default:
			w.WriteHeader(http.StatusBadGateway)
			w.Write([]byte("proxy says no"))
		}
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	c, err := NewClient(ClientConfig{Server: srv.URL, CA: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()

	var ref *Refusal
	if _, err := c.Challenge(ctx, AttestRequest{}); !errors.As(err, &ref) || ref.Reason != ReasonNotApproved || ref.Text != "approve it first" {
		t.Errorf("challenge: %v", err)
	}
	var se *StatusError
	if _, err := c.Nodes(ctx); !errors.As(err, &se) || se.Status != 401 || se.Message != "needs a certificate" {
		t.Errorf("nodes: %v", err)
	}
	if _, err := c.Machines(ctx); err == nil || !strings.Contains(err.Error(), "another version") {
		t.Errorf("machines: %v", err)
	}
	if _, err := c.Releases(ctx); !errors.As(err, &se) || se.Status != 502 || se.Message != "proxy says no" {
		t.Errorf("releases: %v", err)
	}

	for _, bad := range []string{"http://10.0.0.1:9443", "10.0.0.1:9443", "https://", "https://h:1/path"} {
		if _, err := NewClient(ClientConfig{Server: bad, CA: pool}); err == nil {
			t.Errorf("NewClient(%q) accepted", bad)
		}
	}
	if _, err := NewClient(ClientConfig{Server: srv.URL}); err == nil {
		t.Error("NewClient without a CA accepted")
	}
}
