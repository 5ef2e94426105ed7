package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// httpJob is the HTTP measurement: Clients goroutines start together and each GETs URLs in order, as a
// box fetches its kernel and then its initramfs. Every request opens a new connection (keep-alive off),
// as iPXE's kernel and initrd commands did when this was written, so that accepting connections is part
// of what is measured.
type httpJob struct {
	Clients int           `json:"clients"`
	URLs    []string      `json:"urls"`
	Sizes   []int64       `json:"sizes"` // the expected body size of each URL
	Timeout time.Duration `json:"timeout"`
}

// httpResult is the whole run: throughput is Bytes over Seconds (first request to last byte).
type httpResult struct {
	Requests   int       `json:"requests"`
	Failures   int       `json:"failures"`
	Retries    int       `json:"retries"` // 503 answers whose Retry-After was honoured
	Bytes      int64     `json:"bytes"`
	Seconds    float64   `json:"seconds"`
	Latency    latencies `json:"latency"`   // per file: first attempt to last byte, waits included
	Latencies  []float64 `json:"latencies"` // every successful request's, for adding rounds up
	FirstError string    `json:"first_error,omitempty"`
}

// MBps is the throughput in MB (10^6 bytes) per second.
func (r httpResult) MBps() float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.Seconds
}

// newBootHTTPClient is the client every simulated box shares: a new connection for every request, and
// patience for a server whose admission control holds a request in its queue before answering.
func newBootHTTPClient(clients int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 15 * time.Second}).DialContext,
		DisableKeepAlives:     true,
		DisableCompression:    true,
		MaxConnsPerHost:       0,
		MaxIdleConnsPerHost:   clients,
		ResponseHeaderTimeout: 2 * time.Minute,
	}}
}

// maxRetryAfter bounds one honoured wait, so that a wild Retry-After cannot stall the bench.
const maxRetryAfter = 60 * time.Second

// fetch GETs url until it gets the whole body, as our boot clients do: a 503 with Retry-After is waited
// out and counted as a retry; anything else that is not a 200 with want bytes is a failure. buf is the
// caller's read buffer, so that 1,000 clients do not allocate one each per request.
func fetch(ctx context.Context, c *http.Client, url string, want int64, buf []byte) (n int64, retries int, err error) {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, retries, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, retries, err
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			wait := retryAfter(resp.Header.Get("Retry-After"), time.Now())
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			retries++
			select {
			case <-time.After(wait):
				continue
			case <-ctx.Done():
				return 0, retries, fmt.Errorf("GET %s: still 503 after %d retries: %w", url, retries, ctx.Err())
			}
		}
		n, err = readAll(resp.Body, buf)
		resp.Body.Close()
		switch {
		case resp.StatusCode != http.StatusOK:
			return n, retries, fmt.Errorf("GET %s: %s", url, resp.Status)
		case err != nil:
			return n, retries, fmt.Errorf("GET %s: body after %d bytes: %w", url, n, err)
		case want > 0 && n != want:
			return n, retries, fmt.Errorf("GET %s: %d bytes, want %d", url, n, want)
		}
		return n, retries, nil
	}
}

// readAll reads r to its end through buf and counts the bytes.
func readAll(r io.Reader, buf []byte) (int64, error) {
	var n int64
	for {
		m, err := r.Read(buf)
		n += int64(m)
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// retryAfter reads a Retry-After header (seconds, or an HTTP date), bounded to [0, maxRetryAfter]; a
// missing or unreadable one means one second, as iPXE's retry does.
func retryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return time.Second
	}
	if s, err := strconv.Atoi(v); err == nil {
		return min(max(time.Duration(s)*time.Second, 0), maxRetryAfter)
	}
	if t, err := http.ParseTime(v); err == nil {
		return min(max(t.Sub(now), 0), maxRetryAfter)
	}
	return time.Second
}

// runHTTP runs the HTTP measurement.
func runHTTP(ctx context.Context, job httpJob) (httpResult, error) {
	if job.Clients < 1 || len(job.URLs) == 0 || len(job.Sizes) != len(job.URLs) {
		return httpResult{}, fmt.Errorf("http job: want clients >= 1 and a size per URL, got %+v", job)
	}
	ctx, cancel := context.WithTimeout(ctx, job.Timeout)
	defer cancel()
	client := newBootHTTPClient(job.Clients)
	defer client.CloseIdleConnections()

	var (
		mu       sync.Mutex
		lat      []float64
		res      httpResult
		got      atomic.Int64
		wg       sync.WaitGroup
		startGun = make(chan struct{})
	)
	for range job.Clients {
		wg.Go(func() {
			buf := make([]byte, 64<<10)
			<-startGun
			for i, u := range job.URLs {
				t0 := time.Now()
				n, retries, err := fetch(ctx, client, u, job.Sizes[i], buf)
				d := time.Since(t0).Seconds()
				got.Add(n)
				mu.Lock()
				res.Requests++
				res.Retries += retries
				if err != nil {
					res.Failures++
					if res.FirstError == "" {
						res.FirstError = err.Error()
					}
				} else {
					lat = append(lat, d)
				}
				mu.Unlock()
			}
		})
	}
	t0 := time.Now()
	close(startGun)
	wg.Wait()
	res.Seconds = time.Since(t0).Seconds()
	res.Bytes = got.Load()
	res.Latency, res.Latencies = summarize(lat), lat
	return res, nil
}
