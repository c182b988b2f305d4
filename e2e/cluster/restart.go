package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// RestartAPIServer stops kube-apiserver, waits down, and starts it again
// with the same flags, port and certificates, keeping etcd and its data:
// what a rolling restart or a crash of the API server looks like to its
// clients. With kill the server gets SIGKILL, else SIGTERM (a graceful
// shutdown). It returns once the new server answers /healthz, or with an
// error when ctx ends first. Clients keep their configuration: Config and
// the kubeconfigs stay valid.
func (c *Cluster) RestartAPIServer(ctx context.Context, down time.Duration, kill bool) error {
	c.restartMu.Lock()
	defer c.restartMu.Unlock()
	select {
	case <-c.stopped:
		return errors.New("the cluster is stopped")
	default:
	}
	path, args, err := c.stopAPIServer(kill)
	if err != nil {
		return err
	}
	select {
	case <-time.After(down):
	case <-ctx.Done():
		return fmt.Errorf("restarting kube-apiserver: %w", ctx.Err())
	}
	p, err := startProcess("kube-apiserver", path, args, c.Dir)
	if err != nil {
		return err
	}
	c.apiserver = p
	u, err := url.Parse(c.Config.Host)
	if err != nil {
		return fmt.Errorf("reading the API server address %q: %w", c.Config.Host, err)
	}
	return p.waitHealthy(ctx, "https://"+u.Host+"/healthz")
}

// stopAPIServer stops the running kube-apiserver (the one envtest
// started, or the one an earlier restart started) and returns its binary
// and flags.
func (c *Cluster) stopAPIServer(kill bool) (string, []string, error) {
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	if p := c.apiserver; p != nil {
		path, args := p.cmd.Path, p.cmd.Args[1:]
		if !p.exited() {
			_ = p.cmd.Process.Signal(sig)
		}
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		_ = p.logFile.Close()
		c.apiserver = nil
		return path, args, nil
	}
	pid, path, args, err := c.envtestAPIServer()
	if err != nil {
		return "", nil, err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return "", nil, fmt.Errorf("signalling kube-apiserver (pid %d): %w", pid, err)
	}
	// envtest waits for its child, so the pid goes away once it exited.
	deadline := time.Now().Add(stopTimeout)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(stopTimeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return path, args, nil
}

// envtestAPIServer finds the kube-apiserver that envtest started: a child
// of this process serving from the API server's certificate directory.
// It returns its pid, binary and flags, read from /proc.
func (c *Cluster) envtestAPIServer() (int, string, []string, error) {
	certDir := c.env.Environment.ControlPlane.GetAPIServer().CertDir
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, "", nil, fmt.Errorf("finding kube-apiserver: %w", err)
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || parentOf(pid) != self {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if filepath.Base(argv[0]) != "kube-apiserver" || !slices.Contains(argv, "--cert-dir="+certDir) {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			exe = argv[0]
		}
		return pid, exe, argv[1:], nil
	}
	return 0, "", nil, fmt.Errorf("no kube-apiserver child of this process serves from %s", certDir)
}

// parentOf returns the parent pid of pid, or -1 when it cannot be read.
func parentOf(pid int) int {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return -1
	}
	// The command name, in parentheses, may contain spaces: read after it.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return -1
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 2 {
		return -1
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return -1
	}
	return ppid
}

// alive reports whether a process with pid exists (a zombie counts as
// gone).
func alive(pid int) bool {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(raw, ')')
	return i >= 0 && !bytes.HasPrefix(bytes.TrimSpace(raw[i+1:]), []byte("Z"))
}
