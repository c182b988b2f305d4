package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// stopTimeout is how long a process has to exit after SIGTERM before it is
// killed.
const stopTimeout = 10 * time.Second

// process is one running binary whose output goes to a log file.
type process struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	logFile *os.File
	// done is closed when the process has exited; err is its exit error.
	done chan struct{}
	err  error
}

// startProcess starts the binary at path with args, its output appended to
// dir/name.log.
func startProcess(name, path string, args []string, dir string) (*process, error) {
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.Dir = dir
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("starting %s: %w", name, err), logFile.Close())
	}
	p := &process{name: name, cmd: cmd, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has exited.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM, kills the process if it is still running after
// stopTimeout, and closes its log. It returns an error if the process had
// already exited on its own, since something then went wrong.
func (p *process) stop() error {
	var early error
	if p.exited() {
		early = fmt.Errorf("%s had exited before it was stopped (%w); see %s", p.name, p.exitErr(), p.logPath)
	} else {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if err := p.logFile.Close(); err != nil {
		return errors.Join(early, fmt.Errorf("closing the log of %s: %w", p.name, err))
	}
	return early
}

// failure describes a process that exited while it was expected to run,
// with the end of its log.
func (p *process) failure() error {
	return fmt.Errorf("%s exited (%w); the end of %s:\n%s", p.name, p.exitErr(), p.logPath, tail(p.logPath, 20))
}

// exitErr is why the process exited, once it has; a clean exit is an error
// too for a component that should run until stopped.
func (p *process) exitErr() error {
	if p.err == nil {
		return errors.New("exit status 0")
	}
	return p.err
}

// waitHealthy polls url until it answers 200 OK, the process exits or ctx
// ends. Certificates are not verified: the components serve self-signed
// ones on 127.0.0.1.
func (p *process) waitHealthy(ctx context.Context, url string) error {
	hc := &http.Client{
		Timeout: 2 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // a local self-signed health endpoint
		},
	}
	defer hc.CloseIdleConnections()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if healthy(ctx, hc, url) {
			return nil
		}
		select {
		case <-p.done:
			return p.failure()
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to answer %s: %w; see %s", p.name, url, ctx.Err(), p.logPath)
		case <-tick.C:
		}
	}
}

// healthy reports whether a GET of url answers 200 OK.
func healthy(ctx context.Context, hc *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// tail returns the last n lines of the file at path, or a note saying why
// it could not be read.
func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read the log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// freePort returns a TCP port on 127.0.0.1 that nothing listened on a moment
// ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	return n, nil
}
