//go:build e2e

package takeover

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// controller is Flagger or Sluice running as a process, as it would run in
// a cluster.
type controller struct {
	name    string
	logPath string
	started time.Time
	cmd     *exec.Cmd
	log     *os.File
	// done is closed when the process has exited, with its status in
	// waitErr.
	done    chan struct{}
	waitErr error
}

// sharedFlags are the flags both controllers get, with the same names and
// meanings: cluster-wide, Istio by default, leader election through a
// Lease in flaggerNamespace, as Flagger's chart installs it with
// leaderElection.enabled. No Canary here has metrics, so the metrics
// server is never queried (Flagger only logs at start that it is
// unreachable).
func sharedFlags() []string {
	return []string{
		"-kubeconfig", suite.cluster.KubeconfigPath,
		"-mesh-provider", "istio",
		"-metrics-server", "http://127.0.0.1:9",
		"-enable-leader-election", "-leader-election-namespace", flaggerNamespace,
		"-log-level", "info", "-zap-encoding", "console",
	}
}

// startFlagger starts Flagger with sharedFlags. It returns once Flagger
// answers /healthz; whether it leads is seen through its Lease.
func startFlagger(logName string) (*controller, error) {
	return startController("flagger", suite.flagger, "/healthz", logName, sharedFlags()...)
}

// startSluice starts Sluice with sharedFlags and returns once /readyz
// answers 200.
func startSluice(logName string) (*controller, error) {
	return startController("sluice", suite.sluice, "/readyz", logName, sharedFlags()...)
}

// startController starts bin with args and a free -port, its output in
// suite.dir/logName, and waits until path answers 200 on that port.
func startController(name, bin, path, logName string, args ...string) (*controller, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(suite.dir, logName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the %s log: %w", name, err)
	}
	cmd := exec.Command(bin, append(append([]string{}, args...), "-port", strconv.Itoa(port))...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The kernel kills the controller if the test binary dies without
	// cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &controller{name: name, logPath: logPath, started: time.Now(), cmd: cmd, log: logf, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()

	url := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	hc := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(url); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.done:
			_ = logf.Close()
			return nil, fmt.Errorf("%s exited before it answered %s (%w); its log:\n%s", name, path, p.waitErr, tail(logPath, 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = logf.Close()
	return nil, fmt.Errorf("%s did not answer %s in 30s; its log:\n%s", name, path, tail(logPath, 30))
}

// running reports whether the process has not exited.
func (p *controller) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM, as a Deployment scaled to zero does, and kills the
// process after 20 seconds. It returns the exit status: Flagger exits 1
// after giving up its leadership ("Leadership lost"), which is not a
// failure here. Calling it again is a no-op.
func (p *controller) stop() (exit string, err error) {
	if p.running() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			err = fmt.Errorf("%s did not stop in 20s after SIGTERM; killed it", p.name)
		}
	}
	_ = p.log.Close()
	exit = "exit status 0"
	var ee *exec.ExitError
	if errors.As(p.waitErr, &ee) {
		exit = ee.String()
	}
	return exit, err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
