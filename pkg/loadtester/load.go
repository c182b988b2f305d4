package loadtester

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/sluicedev/sluice/pkg/hostlist"
)

// Load is one run of the load generator, as a hey command line describes it.
type Load struct {
	// Method is the HTTP method; empty means GET.
	Method string
	// URL is the http(s) URL every request is sent to.
	URL string
	// Header is sent with every request.
	Header http.Header
	// Host overrides the Host header; empty keeps the URL's host.
	Host string
	// Body is the request body.
	Body []byte
	// Requests is the total number of requests of a run without Duration.
	Requests int
	// Duration, when positive, makes the run send requests for that long,
	// ignoring Requests.
	Duration time.Duration
	// Workers is the number of requests in flight at once, at least 1.
	Workers int
	// QPS limits the requests per second of each worker; 0 means no limit.
	QPS float64
	// Timeout bounds each request; 0 means no bound but the run's context.
	Timeout time.Duration
	// Proxy, when set, is the HTTP proxy requests go through. The
	// environment's proxy settings are not used, as with hey.
	Proxy *url.URL
	// HTTP2 lets requests to https URLs use HTTP/2.
	HTTP2 bool
	// DisableCompression stops asking for gzip-compressed answers.
	DisableCompression bool
	// DisableKeepAlives opens a new connection for every request.
	DisableKeepAlives bool
	// DisableRedirects records redirects as answers instead of following them.
	DisableRedirects bool
	// Targets, when set, are the only hosts requests go to: the URL's, the
	// proxy's and every redirect's; connections are made by its Dialer.
	// nil sends requests anywhere.
	Targets *hostlist.List
}

// Result sums up a run.
type Result struct {
	// Requests is the number of requests sent.
	Requests int64
	// Errors counts the requests that failed: answers outside 2xx and
	// requests without an answer.
	Errors int64
	// Codes counts the answers by status code.
	Codes map[int]int64
	// TransportErrors counts the requests that got no answer (refused
	// connection, timeout, ...).
	TransportErrors int64
	// Elapsed is how long the run took.
	Elapsed time.Duration
	// P50, P90 and P99 are latency percentiles over the answered requests.
	P50, P90, P99 time.Duration
}

// RPS is the mean rate of the run in requests per second.
func (r Result) RPS() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

// Observer is told the outcome of every request: its status code (0 when
// err is set) and its latency. It is called from several goroutines.
type Observer func(code int, err error, latency time.Duration)

// userAgent is hey's User-Agent, kept so that targets filtering hey's
// traffic by User-Agent keep doing so.
const userAgent = "hey/0.0.1"

// Generate sends the load and returns its summary once every worker is
// done: when the requests are sent, Duration has passed or ctx ends. A
// run cut short by ctx returns what was measured and ctx's error.
func Generate(ctx context.Context, l Load, observe Observer) (Result, error) {
	p := pace{requests: l.Requests, workers: l.Workers, duration: l.Duration, qps: l.QPS}
	if err := p.check(); err != nil {
		return Result{}, err
	}
	req, err := http.NewRequest(l.method(), l.URL, nil)
	if err != nil {
		return Result{}, fmt.Errorf("building the request: %w", err)
	}
	if err := l.checkTargets(req.URL); err != nil {
		return Result{}, err
	}
	client := l.client()
	defer client.CloseIdleConnections()
	return p.run(ctx, func(ctx context.Context) (int, error) { return l.send(ctx, client) }, observe)
}

// pace is how a run spreads its requests over its workers and time.
type pace struct {
	// requests is the total of a run without duration.
	requests int
	workers  int
	// duration, when positive, makes the run last that long.
	duration time.Duration
	// qps is each worker's rate; 0 means no limit.
	qps float64
}

func (p pace) check() error {
	if p.workers < 1 {
		return fmt.Errorf("workers must be at least 1, got %d", p.workers)
	}
	if p.duration <= 0 && p.requests < 1 {
		return fmt.Errorf("a run needs a duration or at least one request, got %d requests", p.requests)
	}
	return nil
}

// shot sends one request and returns its status code, HTTP-like: 2xx
// for success.
type shot func(ctx context.Context) (code int, err error)

// run sends the requests with shoot from the workers and sums them up.
func (p pace) run(ctx context.Context, shoot shot, observe Observer) (Result, error) {
	stats := newStats()
	start := time.Now()
	var deadline time.Time
	if p.duration > 0 {
		deadline = start.Add(p.duration)
	}
	var wg sync.WaitGroup
	for i := range p.workers {
		quota := -1 // unlimited: the deadline stops the worker
		if p.duration <= 0 {
			quota = p.requests / p.workers
			if i < p.requests%p.workers {
				quota++
			}
		}
		wg.Go(func() {
			w := worker{qps: p.qps, shoot: shoot, stats: stats, observe: observe}
			w.run(ctx, start, deadline, quota)
		})
	}
	wg.Wait()
	res := stats.result(time.Since(start))
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("the run was stopped: %w", err)
	}
	return res, nil
}

func (l Load) method() string {
	if l.Method == "" {
		return http.MethodGet
	}
	return l.Method
}

// checkTargets checks the URL's and the proxy's hosts against Targets.
func (l Load) checkTargets(u *url.URL) error {
	if l.Targets == nil {
		return nil
	}
	if err := l.Targets.Check(u.Hostname()); err != nil {
		return fmt.Errorf("the load test's URL: %w", err)
	}
	if l.Proxy != nil {
		if err := l.Targets.Check(l.Proxy.Hostname()); err != nil {
			return fmt.Errorf("the load test's proxy: %w", err)
		}
	}
	return nil
}

// maxRedirects is how many redirects a request follows, as Go's default.
const maxRedirects = 10

func (l Load) client() *http.Client {
	tr := &http.Transport{
		// Load tests often target endpoints with self-signed certificates;
		// hey does not verify them either.
		TLSClientConfig:     &tls.Config{InsecureSkipVerify: true, ServerName: hostname(l.Host)}, //nolint:gosec // as hey
		MaxIdleConnsPerHost: min(l.Workers, 500),
		DisableCompression:  l.DisableCompression,
		DisableKeepAlives:   l.DisableKeepAlives,
		ForceAttemptHTTP2:   l.HTTP2,
	}
	if l.Proxy != nil {
		tr.Proxy = http.ProxyURL(l.Proxy)
	}
	if l.Targets != nil {
		tr.DialContext = l.Targets.Dialer(&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second})
	}
	c := &http.Client{Transport: tr, Timeout: l.Timeout}
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		switch {
		case l.DisableRedirects:
			return http.ErrUseLastResponse
		case len(via) >= maxRedirects:
			return fmt.Errorf("stopped after %d redirects", maxRedirects)
		case l.Targets != nil:
			if err := l.Targets.Check(req.URL.Hostname()); err != nil {
				return fmt.Errorf("not following the redirect: %w", err)
			}
		}
		return nil
	}
	return c
}

// hostname drops the port from a Host header.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return host
}

type worker struct {
	qps     float64
	shoot   shot
	stats   *stats
	observe Observer
}

// run sends quota requests (any number when quota < 0) until the deadline
// (when set) or ctx ends, pacing them at qps.
func (w *worker) run(ctx context.Context, start, deadline time.Time, quota int) {
	var period time.Duration
	if w.qps > 0 {
		period = time.Duration(float64(time.Second) / w.qps)
	}
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for i := 0; quota < 0 || i < quota; i++ {
		if period > 0 {
			next := start.Add(time.Duration(i) * period)
			if !deadline.IsZero() && !next.Before(deadline) {
				return
			}
			timer.Reset(time.Until(next))
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
		}
		if ctx.Err() != nil || (!deadline.IsZero() && !time.Now().Before(deadline)) {
			return
		}
		begin := time.Now()
		code, err := w.shoot(ctx)
		latency := time.Since(begin)
		if err != nil && ctx.Err() != nil {
			return // stopped, not a failure of the target
		}
		w.stats.record(code, err, latency)
		if w.observe != nil {
			w.observe(code, err, latency)
		}
	}
}

// send sends one HTTP request of the load.
func (l Load) send(ctx context.Context, client *http.Client) (int, error) {
	req, err := http.NewRequestWithContext(ctx, l.method(), l.URL, bytes.NewReader(l.Body))
	if err != nil { // checked before the run starts
		return 0, err
	}
	for k, v := range l.Header {
		req.Header[k] = v
	}
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", userAgent)
	}
	if l.Host != "" {
		req.Host = l.Host
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}
