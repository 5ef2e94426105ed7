package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Monitor is a QMP client: QEMU's JSON machine protocol on a unix socket. It runs one command at a time
// (QMP answers in order anyway) and records the asynchronous events QEMU sends (SHUTDOWN, RESET, NIC_RX_FILTER_CHANGED...).
type Monitor struct {
	conn net.Conn
	dec  *json.Decoder

	cmdMu  sync.Mutex // one command in flight
	lastID uint64     // id of the latest command, under cmdMu
	reply  chan qmpMessage

	mu        sync.Mutex
	events    []Event
	evPos     int           // WaitEvent consumes events before this index
	changed   chan struct{} // closed and replaced when an event arrives or the connection ends
	closed    bool
	closedErr error
}

// Event is a QMP event.
type Event struct {
	Name string
	Data json.RawMessage
	Time time.Time
}

// replyBuffer holds replies the reader passes on; more than one only matters after commands gave up waiting.
const replyBuffer = 8

// ErrMonitorClosed is returned by commands sent after QEMU closed its monitor (it exited).
var ErrMonitorClosed = errors.New("QEMU's QMP monitor is closed (QEMU exited)")

type qmpMessage struct {
	ID        uint64          `json:"id"`
	QMP       json.RawMessage `json:"QMP"`
	Return    json.RawMessage `json:"return"`
	Error     *qmpError       `json:"error"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
}

type qmpError struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

// dialMonitor connects to QEMU's QMP socket, retrying until QEMU has created it, reads the greeting and
// leaves capabilities negotiation mode. It gives up when ctx ends or exited is closed.
func dialMonitor(ctx context.Context, path string, exited <-chan struct{}) (*Monitor, error) {
	var conn net.Conn
	for {
		var err error
		var d net.Dialer
		conn, err = d.DialContext(ctx, "unix", path)
		if err == nil {
			break
		}
		select {
		case <-exited:
			return nil, fmt.Errorf("QEMU exited before its QMP socket %s answered", path)
		case <-ctx.Done():
			return nil, fmt.Errorf("QMP socket %s: %w (last error: %v)", path, ctx.Err(), err)
		case <-time.After(10 * time.Millisecond):
		}
	}
	m := newMonitor(conn)
	var greeting qmpMessage
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Now()) })
	err := m.dec.Decode(&greeting)
	stop()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("QMP socket %s: no greeting: %w", path, err)
	}
	if greeting.QMP == nil {
		conn.Close()
		return nil, fmt.Errorf("QMP socket %s: the first message is not QMP's greeting", path)
	}
	_ = conn.SetReadDeadline(time.Time{})
	go m.read()
	if err := m.Execute(ctx, "qmp_capabilities", nil, nil); err != nil {
		conn.Close()
		return nil, err
	}
	return m, nil
}

func newMonitor(conn net.Conn) *Monitor {
	return &Monitor{conn: conn, dec: json.NewDecoder(conn), reply: make(chan qmpMessage, replyBuffer), changed: make(chan struct{})}
}

// read dispatches QEMU's messages: events to the record, replies to the command in flight.
func (m *Monitor) read() {
	for {
		var msg qmpMessage
		if err := m.dec.Decode(&msg); err != nil {
			m.mu.Lock()
			m.closed, m.closedErr = true, err
			close(m.changed)
			m.changed = make(chan struct{})
			m.mu.Unlock()
			return
		}
		if msg.Event != "" {
			m.mu.Lock()
			m.events = append(m.events, Event{
				Name: msg.Event,
				Data: msg.Data,
				Time: time.Unix(msg.Timestamp.Seconds, msg.Timestamp.Microseconds*1000),
			})
			close(m.changed)
			m.changed = make(chan struct{})
			m.mu.Unlock()
			continue
		}
		// Never block the reader: if nobody takes replies, events must still be recorded.
		select {
		case m.reply <- msg:
		default:
		}
	}
}

// Execute runs a QMP command with arguments args (nil for none) and decodes its return value into
// result (nil to ignore it).
func (m *Monitor) Execute(ctx context.Context, command string, args, result any) error {
	m.cmdMu.Lock()
	defer m.cmdMu.Unlock()
	m.lastID++
	id := m.lastID
	req := map[string]any{"execute": command, "id": id}
	if args != nil {
		req["arguments"] = args
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	d, _ := ctx.Deadline() // zero, no deadline, if ctx has none
	_ = m.conn.SetWriteDeadline(d)
	if _, err := m.conn.Write(append(b, '\n')); err != nil {
		if m.isClosed() {
			return fmt.Errorf("qmp %s: %w", command, ErrMonitorClosed)
		}
		return fmt.Errorf("qmp %s: %w", command, err)
	}
	for {
		// The connection may have ended before or while the command was written.
		m.mu.Lock()
		changed, closed := m.changed, m.closed
		m.mu.Unlock()
		if closed && len(m.reply) == 0 {
			return fmt.Errorf("qmp %s: %w", command, ErrMonitorClosed)
		}
		select {
		case msg := <-m.reply:
			if msg.ID != id {
				continue // the late reply to a command that gave up waiting
			}
			if msg.Error != nil {
				return fmt.Errorf("qmp %s: %s: %s", command, msg.Error.Class, msg.Error.Desc)
			}
			if result != nil {
				if err := json.Unmarshal(msg.Return, result); err != nil {
					return fmt.Errorf("qmp %s: decode the reply %s: %w", command, msg.Return, err)
				}
			}
			return nil
		case <-changed:
			// An event came, or the connection ended: look again.
		case <-ctx.Done():
			return fmt.Errorf("qmp %s: %w", command, ctx.Err())
		}
	}
}

func (m *Monitor) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Close closes the connection.
func (m *Monitor) Close() error { return m.conn.Close() }

// Cont resumes a paused guest.
func (m *Monitor) Cont(ctx context.Context) error { return m.Execute(ctx, "cont", nil, nil) }

// SystemPowerdown presses the ACPI power button; the guest decides what to do about it.
func (m *Monitor) SystemPowerdown(ctx context.Context) error {
	return m.Execute(ctx, "system_powerdown", nil, nil)
}

// SystemReset presses the reset button.
func (m *Monitor) SystemReset(ctx context.Context) error {
	return m.Execute(ctx, "system_reset", nil, nil)
}

// Quit makes QEMU exit at once, as if the power were cut, but with its disk caches flushed.
func (m *Monitor) Quit(ctx context.Context) error {
	err := m.Execute(ctx, "quit", nil, nil)
	if errors.Is(err, ErrMonitorClosed) {
		return nil // it went before it answered
	}
	return err
}

// SetLink plugs (up) or unplugs a NIC's cable; name is the NIC's device id ("nic0", "nic1"... for
// Config.NICs, see VM.SetLink).
func (m *Monitor) SetLink(ctx context.Context, name string, up bool) error {
	return m.Execute(ctx, "set_link", map[string]any{"name": name, "up": up}, nil)
}

// Screendump writes the VGA screen to path (absolute), as PNG if it ends in .png, else as PPM.
func (m *Monitor) Screendump(ctx context.Context, path string) error {
	args := map[string]any{"filename": path}
	if strings.EqualFold(filepath.Ext(path), ".png") {
		args["format"] = "png"
	}
	return m.Execute(ctx, "screendump", args, nil)
}

// HumanMonitorCommand runs a command of QEMU's human monitor ("info network", "sendkey ctrl-alt-delete")
// and returns its output.
func (m *Monitor) HumanMonitorCommand(ctx context.Context, command string) (string, error) {
	var out string
	err := m.Execute(ctx, "human-monitor-command", map[string]any{"command-line": command}, &out)
	return out, err
}

// Status returns the VM's run state: "running", "paused", "prelaunch", "shutdown", ...
func (m *Monitor) Status(ctx context.Context) (string, error) {
	var st struct {
		Status string `json:"status"`
	}
	err := m.Execute(ctx, "query-status", nil, &st)
	return st.Status, err
}

// Events returns the events received so far.
func (m *Monitor) Events() []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Event(nil), m.events...)
}

// WaitEvent waits for an event named name after those earlier WaitEvent calls consumed, and consumes
// it, like Console.Expect; events that came before the call count.
func (m *Monitor) WaitEvent(ctx context.Context, name string) (Event, error) {
	for {
		m.mu.Lock()
		for i := m.evPos; i < len(m.events); i++ {
			if m.events[i].Name == name {
				m.evPos = i + 1
				ev := m.events[i]
				m.mu.Unlock()
				return ev, nil
			}
		}
		changed, closed := m.changed, m.closed
		m.mu.Unlock()
		if closed {
			return Event{}, fmt.Errorf("waiting for QMP event %s: %w", name, ErrMonitorClosed)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return Event{}, fmt.Errorf("waiting for QMP event %s: %w", name, ctx.Err())
		}
	}
}
