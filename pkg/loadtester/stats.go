package loadtester

import (
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"time"
)

// maxSamples bounds the latencies kept for percentiles. Longer runs keep a
// uniform random sample of their latencies (reservoir sampling), so a one
// hour run at a high rate does not grow without bound.
const maxSamples = 1 << 16

// stats gathers the outcome of a run's requests from its workers.
type stats struct {
	mu         sync.Mutex
	requests   int64
	errors     int64
	transport  int64
	answered   int64
	codes      map[int]int64
	samples    []time.Duration
	maxSamples int
}

func newStats() *stats {
	return &stats{codes: map[int]int64{}, maxSamples: maxSamples}
}

func (s *stats) record(code int, err error, latency time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	if err != nil {
		s.errors++
		s.transport++
		return
	}
	s.codes[code]++
	if code < 200 || code > 299 {
		s.errors++
	}
	s.answered++
	if len(s.samples) < s.maxSamples {
		s.samples = append(s.samples, latency)
	} else if i := rand.Int64N(s.answered); i < int64(s.maxSamples) {
		s.samples[i] = latency
	}
}

func (s *stats) result(elapsed time.Duration) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	sorted := slices.Clone(s.samples)
	slices.Sort(sorted)
	codes := make(map[int]int64, len(s.codes))
	for k, v := range s.codes {
		codes[k] = v
	}
	return Result{
		Requests: s.requests, Errors: s.errors, TransportErrors: s.transport, Codes: codes, Elapsed: elapsed,
		P50: percentile(sorted, 50), P90: percentile(sorted, 90), P99: percentile(sorted, 99),
	}
}

// percentile is the nearest-rank percentile p (0-100] of sorted latencies.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[max(rank, 1)-1]
}
