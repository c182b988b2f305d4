package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"mvdan.cc/sh/v3/shell"
)

// controllerSpec is a controller to measure: a label for the table and a
// command line with placeholders (see placeholders).
type controllerSpec struct {
	Label   string `json:"label"`
	Command string `json:"command"`
}

// placeholders are what a controller command may contain, replaced before
// the command is split into words as a shell would.
const placeholders = "{kubeconfig} {metrics} {namespace} {port}"

// parseControllerSpec reads "[label: ]command"; without a label, the
// command's program name is the label.
func parseControllerSpec(s string) (controllerSpec, error) {
	s = strings.TrimSpace(s)
	if label, rest, ok := strings.Cut(s, ": "); ok && label != "" && !strings.ContainsAny(label, " \t/") {
		return controllerSpec{Label: label, Command: strings.TrimSpace(rest)}, nil
	}
	words, err := shell.Fields(s, func(string) string { return "" })
	if err != nil || len(words) == 0 {
		return controllerSpec{}, fmt.Errorf("reading the controller command %q: %w", s, errors.Join(err, errors.New("no program")))
	}
	label := words[0]
	if i := strings.LastIndexByte(label, '/'); i >= 0 {
		label = label[i+1:]
	}
	return controllerSpec{Label: label, Command: s}, nil
}

// argv substitutes the placeholders and splits the command into words
// (quotes as in a shell; $VARIABLES from the environment).
func (c controllerSpec) argv(vars map[string]string) ([]string, error) {
	pairs := make([]string, 0, 2*len(vars))
	for k, v := range vars {
		pairs = append(pairs, "{"+k+"}", v)
	}
	words, err := shell.Fields(strings.NewReplacer(pairs...).Replace(c.Command), nil)
	if err != nil {
		return nil, fmt.Errorf("reading the command of %s: %w", c.Label, err)
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("the command of %s is empty", c.Label)
	}
	return words, nil
}

// controllerProc is the controller under test, running as a process.
type controllerProc struct {
	spec    controllerSpec
	argv    []string
	logPath string
	cmd     *exec.Cmd
	log     *os.File
	done    chan struct{}
	waitErr error
}

// startController starts the controller with its output in logPath and
// waits until it answers 200 on /readyz (or, for a controller without
// /readyz, /healthz) on the port it was given.
func startController(ctx context.Context, spec controllerSpec, vars map[string]string, port int, logPath string) (*controllerProc, error) {
	argv, err := spec.argv(vars)
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the log of %s: %w", spec.Label, err)
	}
	cmd := exec.Command(argv[0], argv[1:]...) //nolint:gosec // the user chose the command
	cmd.Stdout, cmd.Stderr = logf, logf
	// The kernel kills the controller if the benchmark dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting %s: %w", spec.Label, err)
	}
	p := &controllerProc{spec: spec, argv: argv, logPath: logPath, cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	if err := p.waitReady(ctx, port); err != nil {
		_ = p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls /readyz, then /healthz if /readyz is not served.
func (p *controllerProc) waitReady(ctx context.Context, port int) error {
	hc := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute)
	paths := []string{"/readyz", "/healthz"}
	for time.Now().Before(deadline) {
		resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d%s", port, paths[0]))
		if err == nil {
			_ = resp.Body.Close()
			switch {
			case resp.StatusCode == http.StatusOK:
				return nil
			case resp.StatusCode == http.StatusNotFound && len(paths) > 1:
				paths = paths[1:]
				continue
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("%s exited before it was ready (%w); see %s", p.spec.Label, p.exitErr(), p.logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s was not ready in 2 minutes; see %s", p.spec.Label, p.logPath)
}

// running reports whether the process still runs.
func (p *controllerProc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exitErr is why the process exited, once it has; a clean exit is an
// error too for a controller that should run until stopped.
func (p *controllerProc) exitErr() error {
	if p.waitErr == nil {
		return errors.New("exit status 0")
	}
	return p.waitErr
}

// stop sends SIGTERM and kills the process after 15 seconds.
func (p *controllerProc) stop() error {
	defer func() { _ = p.log.Close() }()
	if !p.running() {
		return fmt.Errorf("%s had exited (%w); see %s", p.spec.Label, p.exitErr(), p.logPath)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return nil
}

// usage is what /proc says about a process at one moment.
type usage struct {
	At time.Time
	// CPU is user plus system time consumed so far.
	CPU time.Duration
	// RSS and PeakRSS (VmHWM) are in bytes. AnonRSS (RssAnon) is the part
	// of RSS that is the process's own memory (heap, stacks), without the
	// pages of its executable and other mapped files, which the kernel
	// shares and can drop: for a Go controller of 80 MB those are 50 to 60
	// MiB of its RSS whatever it does.
	RSS, PeakRSS, AnonRSS int64
}

// clockTicks is the unit of the times in /proc/<pid>/stat (USER_HZ,
// 100 on every Linux architecture Go supports).
const clockTicks = 100

// readUsage reads /proc/<pid>/stat and /proc/<pid>/status.
func readUsage(pid int) (usage, error) {
	u := usage{At: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	// The command name, in parentheses, may hold spaces: fields start after it.
	rest := string(stat[strings.LastIndexByte(string(stat), ')')+1:])
	f := strings.Fields(rest)
	if len(f) < 13 {
		return u, fmt.Errorf("reading the CPU time of process %d: short stat line", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return u, fmt.Errorf("reading the CPU time of process %d: %w", pid, err)
	}
	u.CPU = time.Duration(utime+stime) * time.Second / clockTicks

	status, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, fmt.Errorf("reading the memory of process %d: %w", pid, err)
	}
	defer func() { _ = status.Close() }()
	sc := bufio.NewScanner(status)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM" && key != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		if err != nil {
			return u, fmt.Errorf("reading %s of process %d: %w", key, pid, err)
		}
		switch key {
		case "VmRSS":
			u.RSS = kb << 10
		case "VmHWM":
			u.PeakRSS = kb << 10
		default:
			u.AnonRSS = kb << 10
		}
	}
	return u, sc.Err()
}

// usage reads the controller's CPU time and memory now.
func (p *controllerProc) usage() (usage, error) {
	if !p.running() {
		return usage{}, fmt.Errorf("%s has exited (%w); see %s", p.spec.Label, p.exitErr(), p.logPath)
	}
	return readUsage(p.cmd.Process.Pid)
}

// freePort returns a loopback TCP port that nothing listened on a moment
// ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
