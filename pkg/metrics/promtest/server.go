// Package promtest runs a real Prometheus server for tests: Debian's
// prometheus binary on 127.0.0.1 with a free port, a temporary data
// directory and a one-second scrape interval, scraping in-test exporters
// such as Traffic, which serves mesh-shaped request metrics with known
// rates.
//
// It is test support, not a stable Go API.
package promtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// DebianBinary is where Debian's prometheus package installs the server.
const DebianBinary = "/usr/bin/prometheus"

// Server is a running Prometheus server.
type Server struct {
	// URL is the server's base URL, http://127.0.0.1:<port>.
	URL string
	// API is a client of the server's HTTP API.
	API promv1.API

	jobs   []string
	cmd    *exec.Cmd
	exited chan struct{}
	dir    string
	log    *syncBuffer
}

// FindBinary returns the prometheus binary: the one in PATH, else
// DebianBinary. The error says how to install it.
func FindBinary() (string, error) {
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p, nil
	}
	if _, err := os.Stat(DebianBinary); err == nil {
		return DebianBinary, nil
	}
	return "", fmt.Errorf("the prometheus server binary is neither in PATH nor at %s: run hack/install-deps.sh (as root), which installs Debian's prometheus package", DebianBinary)
}

// Start starts Prometheus scraping every second the given targets, each a
// job name and the full URL of its metrics endpoint, and waits until it is
// ready. Call Stop when done.
func Start(ctx context.Context, targets map[string]string) (*Server, error) {
	bin, err := FindBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "promtest-")
	if err != nil {
		return nil, fmt.Errorf("creating the data directory: %w", err)
	}
	cfg, jobs, err := scrapeConfig(targets)
	if err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, errors.Join(fmt.Errorf("writing the configuration: %w", err), os.RemoveAll(dir))
	}
	// A free port can be taken between choosing it and the server binding
	// it; try a few.
	var errs []error
	for range 3 {
		s, err := start(ctx, bin, dir, cfgPath)
		if err == nil {
			s.jobs = jobs
			return s, nil
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(append(errs, os.RemoveAll(dir))...)
}

// start runs the binary once on a free port and waits for /-/ready.
func start(ctx context.Context, bin, dir, cfgPath string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := &Server{URL: "http://" + addr, exited: make(chan struct{}), dir: dir, log: &syncBuffer{}}
	s.cmd = exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	dieWithParent(s.cmd)
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", bin, err)
	}
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	c, err := promapi.NewClient(promapi.Config{Address: s.URL})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("prometheus client: %w", err), s.kill())
	}
	s.API = promv1.NewAPI(c)

	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err = s.poll(ctx, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/-/ready", nil)
		if err != nil {
			return false, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, nil //nolint:nilerr // not listening yet
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("waiting for prometheus on %s: %w", addr, err), s.kill())
	}
	return s, nil
}

// WaitForScrapes waits until every job has been scraped successfully at
// least n times, so that rate() over the samples has data.
func (s *Server) WaitForScrapes(ctx context.Context, n int) error {
	var last string
	err := s.poll(ctx, func(ctx context.Context) (bool, error) {
		up, err := s.byJob(ctx, `min by (job) (up)`)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		scrapes, err := s.byJob(ctx, `min by (job) (count_over_time(up[10m]))`)
		if err != nil {
			return false, nil //nolint:nilerr // retried until the deadline
		}
		last = fmt.Sprintf("up: %v, scrapes: %v", up, scrapes)
		for _, j := range s.jobs {
			if up[j] != 1 || scrapes[j] < float64(n) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d scrapes of %s (%s): %w", n, strings.Join(s.jobs, ", "), last, err)
	}
	return nil
}

// byJob runs an instant query and returns its values by job label.
func (s *Server) byJob(ctx context.Context, query string) (map[string]float64, error) {
	v, _, _, err := s.API.Query(ctx, query, time.Now())
	if err != nil {
		return nil, fmt.Errorf("querying %s: %w", query, err)
	}
	out := map[string]float64{}
	if vec, ok := v.(model.Vector); ok {
		for _, smp := range vec {
			out[string(smp.Metric["job"])] = float64(smp.Value)
		}
	}
	return out, nil
}

// poll calls cond every 100ms until it is true, it fails, the context ends
// or the server exits.
func (s *Server) poll(ctx context.Context, cond func(context.Context) (bool, error)) error {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; prometheus log:\n%s", ctx.Err(), s.log.String())
		case <-s.exited:
			return fmt.Errorf("prometheus exited: %s", s.log.String())
		case <-tick.C:
		}
	}
}

// Logs returns what the server printed.
func (s *Server) Logs() string { return s.log.String() }

// Stop stops the server and removes its data directory.
func (s *Server) Stop() error {
	if s == nil {
		return nil
	}
	return errors.Join(s.kill(), os.RemoveAll(s.dir))
}

// kill asks the server to stop, and kills it after five seconds.
func (s *Server) kill() error {
	if s.cmd.Process == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(5 * time.Second):
	}
	if err := s.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("killing prometheus: %w", err)
	}
	<-s.exited
	return nil
}

// scrapeConfig renders a configuration with one job per target, sorted.
func scrapeConfig(targets map[string]string) (string, []string, error) {
	jobs := make([]string, 0, len(targets))
	for j := range targets {
		jobs = append(jobs, j)
	}
	sort.Strings(jobs)
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	for _, j := range jobs {
		u, err := url.Parse(targets[j])
		if err != nil || u.Host == "" {
			return "", nil, fmt.Errorf("scrape target %s: %q is not an http URL", j, targets[j])
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/metrics"
		}
		fmt.Fprintf(&b, "  - job_name: %q\n    scheme: %s\n    metrics_path: %q\n    static_configs:\n      - targets: [%q]\n", j, u.Scheme, path, u.Host)
	}
	return b.String(), jobs, nil
}

// freePort returns a TCP port that was free on 127.0.0.1 a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// syncBuffer is a bytes.Buffer safe for the process's writes and our reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns what was written.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
