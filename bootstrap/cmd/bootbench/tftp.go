package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// TFTP opcodes (RFC 1350, 2347).
const (
	tftpRRQ   = 1
	tftpDATA  = 3
	tftpACK   = 4
	tftpERROR = 5
	tftpOACK  = 6
)

// tftpWaits is how long the client waits for the next packet before sending its last one again, silence
// after silence; once the last wait has passed the transfer fails. These are iPXE's retry timer's (a
// quarter second, doubled until past 10 s: about 16 s of silence); any packet that moves the transfer on
// starts the sequence again.
func tftpWaits() []time.Duration {
	return []time.Duration{250 * time.Millisecond, 500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
}

// tftpJob is one wave of the TFTP measurement: Concurrency transfers of File start together.
type tftpJob struct {
	Server      netip.AddrPort `json:"server"`
	File        string         `json:"file"`
	Size        int64          `json:"size"` // expected bytes
	BlkSize     int            `json:"blksize"`
	Concurrency int            `json:"concurrency"`
	Timeout     time.Duration  `json:"timeout"`
}

// tftpResult is one wave: Seconds from the first RRQ to the last transfer's end.
type tftpResult struct {
	Transfers   int       `json:"transfers"`
	Failures    int       `json:"failures"`
	Retransmits int       `json:"retransmits"`
	Seconds     float64   `json:"seconds"`
	Latency     latencies `json:"latency"` // per successful transfer
	FirstError  string    `json:"first_error,omitempty"`
}

// runTFTP runs one wave.
func runTFTP(ctx context.Context, job tftpJob) (tftpResult, error) {
	if job.Concurrency < 1 || !job.Server.IsValid() || job.File == "" {
		return tftpResult{}, fmt.Errorf("tftp job: want a server, a file and concurrency >= 1, got %+v", job)
	}
	ctx, cancel := context.WithTimeout(ctx, job.Timeout)
	defer cancel()
	var (
		mu       sync.Mutex
		res      tftpResult
		lat      []float64
		wg       sync.WaitGroup
		startGun = make(chan struct{})
	)
	for range job.Concurrency {
		wg.Go(func() {
			<-startGun
			t0 := time.Now()
			n, retrans, err := tftpGet(ctx, job.Server, job.File, job.BlkSize)
			if err == nil && job.Size > 0 && n != job.Size {
				err = fmt.Errorf("tftp %s: %d bytes, want %d", job.File, n, job.Size)
			}
			d := time.Since(t0).Seconds()
			mu.Lock()
			defer mu.Unlock()
			res.Transfers++
			res.Retransmits += retrans
			if err != nil {
				res.Failures++
				if res.FirstError == "" {
					res.FirstError = err.Error()
				}
				return
			}
			lat = append(lat, d)
		})
	}
	t0 := time.Now()
	close(startGun)
	wg.Wait()
	res.Seconds = time.Since(t0).Seconds()
	res.Latency = summarize(lat)
	return res, nil
}

// tftpGet reads file from server as a boot ROM does: RRQ with blksize and tsize (RFC 2348, 2349), then
// an ACK for every DATA block. On silence it sends its last packet again after each of tftpWaits. It
// returns the bytes received and the retransmissions it made.
func tftpGet(ctx context.Context, server netip.AddrPort, file string, blksize int) (int64, int, error) {
	conn, err := net.ListenUDP("udp4", nil)
	if err != nil {
		return 0, 0, fmt.Errorf("tftp: open a socket: %w", err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}

	var (
		to       = net.UDPAddrFromAddrPort(server)
		peer     *net.UDPAddr // the server's transfer port (TID), fixed by its first answer
		last     = tftpRRQPacket(file, blksize)
		blk      = 512 // until the server's OACK says otherwise
		tsize    = int64(-1)
		expect   = uint16(1)
		got      int64
		retrans  int
		silences int
		waits    = tftpWaits()
		buf      = make([]byte, 65536)
	)
	if _, err := conn.WriteToUDP(last, to); err != nil {
		return 0, 0, fmt.Errorf("tftp: send RRQ to %s: %w", server, err)
	}
	for {
		if err := ctx.Err(); err != nil {
			return got, retrans, fmt.Errorf("tftp %s: %w after %d bytes", file, err, got)
		}
		_ = conn.SetReadDeadline(time.Now().Add(waits[silences]))
		n, from, err := conn.ReadFromUDP(buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && ctx.Err() == nil {
				silences++
				if silences == len(waits) {
					return got, retrans, fmt.Errorf("tftp %s: %s silent for %d waits in a row (%d bytes in)", file, server, silences, got)
				}
				retrans++
				if _, err := conn.WriteToUDP(last, to); err != nil {
					return got, retrans, fmt.Errorf("tftp: resend to %s: %w", to, err)
				}
				continue
			}
			return got, retrans, fmt.Errorf("tftp %s: %w after %d bytes", file, err, got)
		}
		if peer == nil {
			peer, to = from, from
		} else if !from.IP.Equal(peer.IP) || from.Port != peer.Port {
			continue // a stray packet from another port is not ours (RFC 1350 would answer it with an error)
		}
		p := buf[:n]
		if len(p) < 4 {
			continue
		}
		switch binary.BigEndian.Uint16(p) {
		case tftpOACK:
			if expect != 1 {
				continue
			}
			opts := parseTFTPOptions(p[2:])
			if v, ok := opts["blksize"]; ok {
				b, err := strconv.Atoi(v)
				if err != nil || b < 8 || b > blksize {
					return got, retrans, fmt.Errorf("tftp %s: server's OACK has blksize %q, we asked for %d", file, v, blksize)
				}
				blk = b
			}
			if v, ok := opts["tsize"]; ok {
				tsize, _ = strconv.ParseInt(v, 10, 64)
			}
			last = tftpACKPacket(0)
		case tftpDATA:
			block := binary.BigEndian.Uint16(p[2:])
			data := p[4:]
			if block != expect {
				// A duplicate of a block we had: our ACK was lost, so it goes again.
				if block == expect-1 {
					retrans++
					if _, err := conn.WriteToUDP(last, to); err != nil {
						return got, retrans, err
					}
				}
				continue
			}
			got += int64(len(data))
			last = tftpACKPacket(block)
			expect++
			silences = 0
			if _, err := conn.WriteToUDP(last, to); err != nil {
				return got, retrans, fmt.Errorf("tftp: ACK to %s: %w", to, err)
			}
			if len(data) < blk {
				if tsize >= 0 && got != tsize {
					return got, retrans, fmt.Errorf("tftp %s: %d bytes, the server announced tsize %d", file, got, tsize)
				}
				return got, retrans, nil
			}
			continue
		case tftpERROR:
			code := binary.BigEndian.Uint16(p[2:])
			msg, _, _ := bytes.Cut(p[4:], []byte{0})
			return got, retrans, fmt.Errorf("tftp %s: server error %d: %s", file, code, msg)
		default:
			continue
		}
		silences = 0
		if _, err := conn.WriteToUDP(last, to); err != nil {
			return got, retrans, fmt.Errorf("tftp: send to %s: %w", to, err)
		}
	}
}

// tftpRRQPacket is a read request in octet mode asking for blksize and the transfer size.
func tftpRRQPacket(file string, blksize int) []byte {
	b := binary.BigEndian.AppendUint16(nil, tftpRRQ)
	for _, s := range []string{file, "octet", "blksize", strconv.Itoa(blksize), "tsize", "0"} {
		b = append(append(b, s...), 0)
	}
	return b
}

func tftpACKPacket(block uint16) []byte {
	return binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, tftpACK), block)
}

// parseTFTPOptions reads the NUL-separated name/value pairs of an OACK; names are case-insensitive.
func parseTFTPOptions(b []byte) map[string]string {
	parts := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
	opts := make(map[string]string)
	for i := 0; i+1 < len(parts); i += 2 {
		opts[string(bytes.ToLower(parts[i]))] = string(parts[i+1])
	}
	return opts
}
