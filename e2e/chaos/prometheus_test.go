//go:build e2e

package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

// prometheus is a real Prometheus server that can be stopped and started
// again on the same address with the same data, as a restarted Prometheus
// pod behind its Service would be. (promtest.Server gets a new port and
// data directory each time.)
type prometheus struct {
	bin, dir, config, addr string
	// URL is the server's base URL; it stays the same across restarts.
	URL string

	cmd  *exec.Cmd
	done chan struct{}
	log  *os.File
}

// newPrometheus writes a configuration scraping every target (job name to
// metrics URL) each second, picks a free port and starts the server.
func newPrometheus(ctx context.Context, dir string, targets map[string]string) (*prometheus, error) {
	bin, err := promtest.FindBinary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("creating the Prometheus directory: %w", err)
	}
	jobs := make([]string, 0, len(targets))
	for j := range targets {
		jobs = append(jobs, j)
	}
	sort.Strings(jobs)
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	for _, j := range jobs {
		u := strings.TrimPrefix(targets[j], "http://")
		host, path, _ := strings.Cut(u, "/")
		fmt.Fprintf(&b, "  - job_name: %q\n    metrics_path: %q\n    static_configs:\n      - targets: [%q]\n", j, "/"+path, host)
	}
	p := &prometheus{bin: bin, dir: dir, config: filepath.Join(dir, "prometheus.yml")}
	if err := os.WriteFile(p.config, []byte(b.String()), 0o600); err != nil {
		return nil, fmt.Errorf("writing the Prometheus configuration: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a port for Prometheus: %w", err)
	}
	p.addr = l.Addr().String()
	_ = l.Close()
	p.URL = "http://" + p.addr
	return p, p.start(ctx)
}

// start runs the server and waits until it is ready.
func (p *prometheus) start(ctx context.Context) error {
	logf, err := os.OpenFile(filepath.Join(p.dir, "prometheus.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("opening the Prometheus log: %w", err)
	}
	cmd := exec.Command(p.bin,
		"--config.file="+p.config,
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("starting Prometheus: %w", err)
	}
	p.cmd, p.log, p.done = cmd, logf, make(chan struct{})
	go func(done chan struct{}) { _ = cmd.Wait(); close(done) }(p.done)

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.URL+"/-/ready", nil)
		if resp, err := hc.Do(req); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return errors.New("prometheus exited before it was ready; see " + filepath.Join(p.dir, "prometheus.log"))
		case <-ctx.Done():
			return fmt.Errorf("waiting for Prometheus at %s: %w", p.URL, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// stop stops the server (SIGTERM, then SIGKILL after 10 seconds) and keeps
// its data. It does nothing when the server is not running.
func (p *prometheus) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.log.Close()
	p.cmd = nil
}
