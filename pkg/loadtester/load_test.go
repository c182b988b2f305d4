package loadtester

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluicedev/sluice/pkg/hostlist"
)

// target is an httptest server counting the requests it answers and
// remembering the last one.
type target struct {
	*httptest.Server
	count atomic.Int64
	mu    sync.Mutex
	last  *http.Request
	body  string
}

func newTarget(t *testing.T, status func(n int64) int) *target {
	t.Helper()
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tg.count.Add(1)
		b, _ := io.ReadAll(r.Body)
		tg.mu.Lock()
		tg.last, tg.body = r, string(b)
		tg.mu.Unlock()
		w.WriteHeader(status(n))
	}))
	t.Cleanup(tg.Close)
	return tg
}

func ok200(int64) int { return http.StatusOK }

func TestGenerate_SendsExactlyTheRequestedCount(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"hey -n 50 -c 5 URL", "hey -n 53 -c 5 URL", "hey -n 1 -c 1 URL"} {
		t.Run(line, func(t *testing.T) {
			t.Parallel()
			tg := newTarget(t, ok200)
			l, err := heyLoad(t, line[:len(line)-3]+tg.URL)
			if err != nil {
				t.Fatal(err)
			}
			res, err := Generate(context.Background(), l, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := int64(l.Requests); res.Requests != want || tg.count.Load() != want {
				t.Errorf("sent %d requests, target got %d, want %d", res.Requests, tg.count.Load(), want)
			}
			if res.Errors != 0 || res.Codes[200] != int64(l.Requests) {
				t.Errorf("result = %+v, want every request answered 200", res)
			}
		})
	}
}

func TestGenerate_HoldsTheRateForTheDuration(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, ok200)
	l, err := heyLoad(t, "hey -z 1s -q 20 -c 2 "+tg.URL)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res, err := Generate(context.Background(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	// 2 workers at 20 requests per second for 1s: 40 requests, within 10%.
	if res.Requests < 36 || res.Requests > 44 || tg.count.Load() != res.Requests {
		t.Errorf("sent %d requests (target got %d), want 40±4", res.Requests, tg.count.Load())
	}
	if elapsed < 900*time.Millisecond || elapsed > 3*time.Second {
		t.Errorf("the run took %s, want about 1s", elapsed)
	}
}

func TestGenerate_AppliesMethodHeadersBodyAndHost(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, ok200)
	l, err := heyLoad(t, `hey -n 3 -c 1 -m put -H 'Cookie: type=insider' -H "X-Canary: yes" -d '{"k":"v"}' -T application/json -host app.example.com `+tg.URL+"/path?q=1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Generate(context.Background(), l, nil); err != nil {
		t.Fatal(err)
	}
	tg.mu.Lock()
	defer tg.mu.Unlock()
	r := tg.last
	checks := map[string][2]string{
		"method":       {r.Method, "PUT"},
		"path":         {r.URL.RequestURI(), "/path?q=1"},
		"Host":         {r.Host, "app.example.com"},
		"Cookie":       {r.Header.Get("Cookie"), "type=insider"},
		"X-Canary":     {r.Header.Get("X-Canary"), "yes"},
		"Content-Type": {r.Header.Get("Content-Type"), "application/json"},
		"User-Agent":   {r.Header.Get("User-Agent"), "hey/0.0.1"},
		"body":         {tg.body, `{"k":"v"}`},
	}
	for what, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", what, c[0], c[1])
		}
	}
}

func TestGenerate_CountsNon2xxAnswersAndTransportErrorsAsErrors(t *testing.T) {
	t.Parallel()
	t.Run("every other answer is 500", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t, func(n int64) int { return []int{200, 500}[n%2] })
		l, err := heyLoad(t, "hey -n 20 -c 2 "+tg.URL)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Generate(context.Background(), l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != 20 || res.Errors != 10 || res.Codes[500] != 10 || res.Codes[200] != 10 || res.TransportErrors != 0 {
			t.Errorf("result = %+v, want 10 of 20 errors, all 500s", res)
		}
	})
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		tg := newTarget(t, ok200)
		tg.Close()
		l, err := heyLoad(t, "hey -n 4 -c 2 "+tg.URL)
		if err != nil {
			t.Fatal(err)
		}
		var observed atomic.Int64
		res, err := Generate(context.Background(), l, func(code int, err error, _ time.Duration) {
			if code == 0 && err != nil {
				observed.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests != 4 || res.Errors != 4 || res.TransportErrors != 4 || observed.Load() != 4 {
			t.Errorf("result = %+v (observed %d errors), want 4 transport errors", res, observed.Load())
		}
	})
}

func TestGenerate_ReportsLatencyPercentiles(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, ok200)
	l, err := heyLoad(t, "hey -n 30 -c 3 "+tg.URL)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Generate(context.Background(), l, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.P50 <= 0 || res.P50 > res.P90 || res.P90 > res.P99 || res.P99 > 10*time.Second {
		t.Errorf("percentiles p50=%s p90=%s p99=%s, want 0 < p50 <= p90 <= p99", res.P50, res.P90, res.P99)
	}
	if res.RPS() <= 0 {
		t.Errorf("RPS = %f, want positive", res.RPS())
	}
}

func TestPercentile_IsTheNearestRank(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var sorted []time.Duration
	for i := 1; i <= 100; i++ {
		sorted = append(sorted, ms(i))
	}
	tests := []struct {
		p    float64
		in   []time.Duration
		want time.Duration
	}{
		{p: 50, in: sorted, want: ms(50)},
		{p: 90, in: sorted, want: ms(90)},
		{p: 99, in: sorted, want: ms(99)},
		{p: 50, in: []time.Duration{ms(7)}, want: ms(7)},
		{p: 99, in: []time.Duration{ms(1), ms(2), ms(3)}, want: ms(3)},
		{p: 50, in: nil, want: 0},
	}
	for _, tt := range tests {
		if got := percentile(tt.in, tt.p); got != tt.want {
			t.Errorf("percentile(%d samples, %v) = %s, want %s", len(tt.in), tt.p, got, tt.want)
		}
	}
}

func TestStats_KeepsABoundedSampleOfLatencies(t *testing.T) {
	s := newStats()
	s.maxSamples = 100
	for i := range 1000 {
		s.record(200, nil, time.Duration(i))
	}
	res := s.result(time.Second)
	if len(s.samples) != 100 || res.Requests != 1000 || res.Codes[200] != 1000 {
		t.Errorf("kept %d samples of %d requests, want 100 of 1000", len(s.samples), res.Requests)
	}
}

func TestGenerate_StopsWhenTheContextEnds(t *testing.T) {
	t.Parallel()
	tg := newTarget(t, ok200)
	l, err := heyLoad(t, "hey -z 1m -q 50 -c 2 "+tg.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := Generate(ctx, l, nil)
		done <- err
	}()
	eventually(t, "the first requests", func() bool { return tg.count.Load() >= 2 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Generate = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Generate did not return after its context ended")
	}
}

func TestGenerate_RejectsLoadsWithoutWorkOrWorkers(t *testing.T) {
	for name, l := range map[string]Load{
		"no workers":          {URL: "http://x/", Requests: 1},
		"no requests":         {URL: "http://x/", Workers: 1},
		"target not allowed":  {URL: "http://x.example.com/", Workers: 1, Requests: 1, Targets: hostlist.MustParse(hostlist.Default)},
		"proxy not allowed":   {URL: "http://x/", Workers: 1, Requests: 1, Proxy: &url.URL{Host: "10.0.0.1:3128"}, Targets: hostlist.MustParse(hostlist.Default)},
		"invalid method name": {URL: "http://x/", Workers: 1, Requests: 1, Method: "BAD METHOD"},
	} {
		if _, err := Generate(context.Background(), l, nil); err == nil {
			t.Errorf("%s: Generate succeeded, want an error", name)
		}
	}
}
