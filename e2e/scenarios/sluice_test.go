//go:build e2e

package scenarios

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// sluiceProcess is the Sluice manager running as a process, as it would
// run in a cluster.
type sluiceProcess struct {
	// args are the flags it was started with, without -port.
	args    []string
	logPath string
	cmd     *exec.Cmd
	log     *os.File
	// done is closed when the process has exited, with its status in
	// waitErr.
	done    chan struct{}
	waitErr error
	killed  bool
}

// startSluice starts the manager with args and a free -port, appending its
// output to logPath, and waits until /readyz answers 200.
func startSluice(logPath string, args ...string) (*sluiceProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the sluice log: %w", err)
	}
	cmd := exec.Command(suite.sluice, append(append([]string{}, args...), "-port", strconv.Itoa(port))...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The kernel kills Sluice if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting sluice: %w", err)
	}
	p := &sluiceProcess{args: args, logPath: logPath, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()

	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", port)
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(readyz); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			_ = logf.Close()
			return nil, fmt.Errorf("sluice exited before it was ready (%w); its log:\n%s", p.waitErr, tail(logPath, 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = p.kill()
	return nil, fmt.Errorf("sluice was not ready in 30s; its log:\n%s", tail(logPath, 30))
}

// stop asks Sluice to stop with SIGTERM and kills it after 15 seconds. An
// error says it did not exit cleanly.
func (p *sluiceProcess) stop() error {
	if p.killed {
		return nil
	}
	defer func() { _ = p.log.Close() }()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		return errors.New("sluice did not stop in 15s after SIGTERM; killed it")
	}
}

// kill stops Sluice with SIGKILL and waits until it is gone.
func (p *sluiceProcess) kill() error {
	p.killed = true
	defer func() { _ = p.log.Close() }()
	if err := p.cmd.Process.Kill(); err != nil {
		return err
	}
	<-p.done // its status only says it was killed
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
