package control

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/onecloud-edu/onecloud/firmware/netcfg"
)

// Client calls the control API; the node console uses it.
type Client struct {
	hc *http.Client
}

// NewClient returns a client of the API on the unix socket path
// (SocketPath on a box). Bound each call with its context.
func NewClient(path string) *Client {
	return &Client{hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}}}
}

// Error is an answer other than success: Message is written for the
// technician, Status tells what kind (400 bad input, 409 not now, 501 not
// in this firmware, 503 not running, 500).
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// State asks for the network's state and every NIC's configuration.
func (c *Client) State(ctx context.Context) (State, error) {
	var st State
	return st, c.do(ctx, http.MethodGet, "/v1/state", nil, &st)
}

// ChangeNetwork applies ch and starts testing it; the answer is the state
// just after, with the change pending (or already ended).
func (c *Client) ChangeNetwork(ctx context.Context, ch netcfg.Change) (State, error) {
	var st State
	return st, c.do(ctx, http.MethodPost, "/v1/network", ch, &st)
}

// ConfirmNetwork keeps the change being tested.
func (c *Client) ConfirmNetwork(ctx context.Context) (State, error) {
	var st State
	return st, c.do(ctx, http.MethodPost, "/v1/network/confirm", nil, &st)
}

// SetServers keeps the boot server and cluster for the next enrolment.
func (c *Client) SetServers(ctx context.Context, s Servers) (string, error) {
	return c.act(ctx, "/v1/servers", s)
}

// Reenrol starts enrolment again.
func (c *Client) Reenrol(ctx context.Context) (string, error) { return c.act(ctx, "/v1/reenrol", nil) }

// RequestRole asks the boot server for another role.
func (c *Client) RequestRole(ctx context.Context, role string) (string, error) {
	return c.act(ctx, "/v1/role-request", RoleRequest{Role: role})
}

// Reboot stops the services and reboots the box.
func (c *Client) Reboot(ctx context.Context) (string, error) { return c.act(ctx, "/v1/reboot", nil) }

// PowerOff stops the services and powers the box off.
func (c *Client) PowerOff(ctx context.Context) (string, error) {
	return c.act(ctx, "/v1/poweroff", nil)
}

// FactoryReset resets the box; serial must be the box's, as typed from its label.
func (c *Client) FactoryReset(ctx context.Context, serial string) (string, error) {
	return c.act(ctx, "/v1/factory-reset", FactoryReset{Serial: serial})
}

// Rollback boots the previous image.
func (c *Client) Rollback(ctx context.Context) (string, error) {
	return c.act(ctx, "/v1/rollback", nil)
}

// act posts a route that answers a Reply and returns its message.
func (c *Client) act(ctx context.Context, path string, body any) (string, error) {
	var r Reply
	err := c.do(ctx, http.MethodPost, path, body, &r)
	return r.Message, err
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://onecloud"+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("the firmware's control API does not answer (is onecloud-init running?): %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read the control API's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var e errorReply
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("the control API answered %s", resp.Status)
		}
		return &Error{Status: resp.StatusCode, Message: e.Error}
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the control API's answer is not what this console expects: %w", err)
	}
	return nil
}
