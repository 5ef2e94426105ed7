package verify

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/onecloud-edu/onecloud/noded/api"
	"github.com/onecloud-edu/onecloud/noded/attest"
)

// timed is an env that adds up the time spent in the verifier (JSON
// included, as a server would spend it).
type timed struct {
	*env
	nanos *atomic.Int64
}

func (t timed) Challenge(ctx context.Context, req api.AttestRequest) (api.Challenge, error) {
	start := time.Now()
	defer func() { t.nanos.Add(int64(time.Since(start))) }()
	return t.env.Challenge(ctx, req)
}

func (t timed) Prove(ctx context.Context, p api.Proof) (api.Result, error) {
	start := time.Now()
	defer func() { t.nanos.Add(int64(time.Since(start))) }()
	return t.env.Prove(ctx, p)
}

// BenchmarkRoundTrip runs whole attestations (EK and AK creation, EK
// certificate read, challenge, activation, quote, PCR read, verification)
// of boxes with certified swtpm TPMs against one verifier. Metrics:
// ms/attestation is a box's latency, attestations/s what all boxes got
// through together, verifier-ms/attestation the time spent in the
// verifier, verifier-attestations/s its throughput on one core.
func BenchmarkRoundTrip(b *testing.B) {
	for _, clients := range []int{1, 4} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			e := newEnv(b)
			boxes := make([]*box, clients)
			for i := range boxes {
				boxes[i] = newBox(b, factory.Manufactured(b, 0), fmt.Sprintf("SN-BENCH-%d", i), releasedKernel, attest.Options{})
				e.machines.approve(boxes[i].serial, Approval{MachineID: boxes[i].id})
			}
			v := timed{env: e, nanos: new(atomic.Int64)}
			var (
				next      atomic.Int64
				wg        sync.WaitGroup
				mu        sync.Mutex
				latencies []time.Duration
			)
			b.ResetTimer()
			start := time.Now()
			for _, bx := range boxes {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						t0 := time.Now()
						if _, err := bx.client.Attest(context.Background(), v, bx.id, bx.serial, bx.log); err != nil {
							b.Error(err)
							return
						}
						d := time.Since(t0)
						mu.Lock()
						latencies = append(latencies, d)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if len(latencies) == 0 {
				return
			}
			slices.Sort(latencies)
			var sum time.Duration
			for _, d := range latencies {
				sum += d
			}
			n := float64(len(latencies))
			b.ReportMetric(float64(sum.Milliseconds())/n, "ms/attestation")
			b.ReportMetric(float64(latencies[len(latencies)*95/100].Microseconds())/1000, "p95-ms")
			b.ReportMetric(n/elapsed.Seconds(), "attestations/s")
			vn := float64(v.nanos.Load())
			b.ReportMetric(vn/n/1e6, "verifier-ms/attestation")
			b.ReportMetric(n*1e9/vn, "verifier-attestations/s")
		})
	}
}

var _ attest.Verifier = timed{}
var _ attest.Verifier = (*env)(nil)
