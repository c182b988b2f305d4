//go:build e2e

package chaos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sluicedev/sluice/e2e/install"
)

// fleetMode is how Sluice runs during a part of the campaign.
type fleetMode struct {
	name string
	// replicas is 1 or 2; two replicas always run leader election.
	replicas       int
	leaderElection bool
	// rateLimited runs the API client at -kubeconfig-qps 2
	// -kubeconfig-burst 4.
	rateLimited bool
}

// The modes a campaign cycles through.
var (
	modeSingle        = fleetMode{name: "1 replica", replicas: 1}
	modeSingleLimited = fleetMode{name: "1 replica, qps 2", replicas: 1, rateLimited: true}
	modePair          = fleetMode{name: "2 replicas, leader election", replicas: 2, leaderElection: true}
	modePairLimited   = fleetMode{name: "2 replicas, leader election, qps 2", replicas: 2, leaderElection: true, rateLimited: true}
)

// leaseNamespace holds the leader election Lease: Sluice's namespace,
// where the chart's Role grants Leases.
const leaseNamespace = install.Namespace

// fleet is the Sluice processes of the campaign: one, or two under leader
// election.
type fleet struct {
	dir, kubeconfig, metricsServer string

	mu    sync.Mutex
	mode  fleetMode
	procs []*sluiceProc
	// epoch grows on every reconfiguration, so that a delayed restart of
	// a killed replica of an earlier mode does not run.
	epoch int
	seq   int
	// earlyExits counts the replicas that exited before they were ready
	// and were started again.
	earlyExits int
}

// sluiceProc is one Sluice process.
type sluiceProc struct {
	name    string
	port    int
	cmd     *exec.Cmd
	done    chan struct{}
	log     *os.File
	logPath string
}

// args are the flags of a replica in the fleet's mode.
func (f *fleet) args(port int) []string {
	a := []string{
		"-kubeconfig", f.kubeconfig, "-mesh-provider", "istio", "-metrics-server", f.metricsServer,
		"-log-level", "info", "-zap-encoding", "console", "-port", strconv.Itoa(port),
	}
	if f.mode.leaderElection {
		a = append(a, "-enable-leader-election", "-leader-election-namespace", leaseNamespace)
	}
	if f.mode.rateLimited {
		a = append(a, "-kubeconfig-qps", "2", "-kubeconfig-burst", "4")
	}
	return a
}

// start starts one replica in the current mode and waits until it is
// ready. A replica that exits before it is ready (Sluice stops when it
// cannot reach the API server at start-up) is started again after two
// seconds, as the kubelet would, for up to three minutes. The caller holds
// f.mu.
func (f *fleet) start() (*sluiceProc, error) {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		p, err := f.startOnce()
		if err == nil || !errors.Is(err, errExitedEarly) || time.Now().After(deadline) {
			return p, err
		}
		f.earlyExits++
		time.Sleep(2 * time.Second)
	}
}

// errExitedEarly says that a replica exited before it was ready.
var errExitedEarly = errors.New("exited before it was ready")

// startOnce starts one replica and waits until it is ready.
func (f *fleet) startOnce() (*sluiceProc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("finding a port for sluice: %w", err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	f.seq++
	name := fmt.Sprintf("sluice-%d", f.seq)
	logPath := filepath.Join(f.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the sluice log: %w", err)
	}
	cmd := exec.Command(suite.sluice, f.args(port)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("starting sluice: %w", err)
	}
	p := &sluiceProc{name: name, port: port, cmd: cmd, done: make(chan struct{}), log: logf, logPath: logPath}
	go func() { _ = cmd.Wait(); close(p.done) }()
	hc := &http.Client{Timeout: time.Second}
	// The API server may be restarting: give it time.
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port)); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				f.procs = append(f.procs, p)
				return p, nil
			}
		}
		select {
		case <-p.done:
			_ = logf.Close()
			return nil, fmt.Errorf("%s %w; see %s", name, errExitedEarly, logPath)
		case <-time.After(200 * time.Millisecond):
		}
	}
	p.kill()
	return nil, fmt.Errorf("%s was not ready in 90s; see %s", name, logPath)
}

// kill stops the process with SIGKILL and waits until it is gone.
func (p *sluiceProc) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.log.Close()
}

// terminate stops the process with SIGTERM (it releases its Lease), and
// kills it after 15 seconds.
func (p *sluiceProc) terminate() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	_ = p.log.Close()
}

// exited reports whether the process is gone.
func (p *sluiceProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// isLeader asks the replica's /metrics whether it holds the Lease.
func (p *sluiceProc) isLeader() bool {
	hc := &http.Client{Timeout: 2 * time.Second}
	resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p.port))
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "leader_election_master_status{") && strings.HasSuffix(line, " 1") {
			return true
		}
	}
	return false
}

// elected reports whether the fleet runs leader election.
func (f *fleet) elected() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mode.leaderElection
}

// reconfigure stops every replica gracefully and starts the mode's.
func (f *fleet) reconfigure(mode fleetMode) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	for _, p := range f.procs {
		p.terminate()
	}
	f.procs = nil
	f.mode = mode
	for range mode.replicas {
		if _, err := f.start(); err != nil {
			return err
		}
	}
	return nil
}

// killLeader kills the replica that acts (the leader, or the only one)
// with SIGKILL and starts a replacement after delay, in the background.
// It returns the killed replica's name, or "" when none was found to act,
// and whether the fleet runs leader election.
func (f *fleet) killLeader(ctx context.Context, delay time.Duration, restarted chan<- error) (string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var victim *sluiceProc
	for _, p := range f.procs {
		if p.exited() {
			continue
		}
		if !f.mode.leaderElection || p.isLeader() {
			victim = p
			break
		}
	}
	if victim == nil {
		return "", f.mode.leaderElection
	}
	victim.kill()
	f.procs = without(f.procs, victim)
	epoch := f.epoch
	go func() {
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.epoch != epoch || len(f.procs) >= f.mode.replicas {
			restarted <- nil
			return
		}
		_, err := f.start()
		restarted <- err
	}()
	return victim.name, f.mode.leaderElection
}

// stop kills what runs.
func (f *fleet) stop() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
	for _, p := range f.procs {
		p.terminate()
	}
	f.procs = nil
}

// crashed returns the replicas that exited without being asked to.
func (f *fleet) crashed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	for _, p := range f.procs {
		if p.exited() {
			errs = append(errs, fmt.Errorf("%s exited on its own; see %s", p.name, p.logPath))
		}
	}
	return errors.Join(errs...)
}

func without(ps []*sluiceProc, p *sluiceProc) []*sluiceProc {
	out := ps[:0:0]
	for _, q := range ps {
		if q != p {
			out = append(out, q)
		}
	}
	return out
}
