//go:build e2e

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The kinds of fault.
const (
	faultKill       = "sluice SIGKILL"
	faultLeaderKill = "leader SIGKILL"
	faultAPIServer  = "kube-apiserver restart"
	faultPrometheus = "Prometheus stopped"
	faultWebhook    = "webhook hang/500/close"
	faultReconfig   = "controller redeployed"
)

// faultKinds lists the kinds in the order the report prints them.
var faultKinds = []string{faultKill, faultLeaderKill, faultAPIServer, faultPrometheus, faultWebhook, faultReconfig}

// fault is one injected fault.
type fault struct {
	kind          string
	at, until     time.Time
	detail        string
	duringPromote bool
}

// injector injects faults at seeded moments: one every gap (a random
// duration between gap[0] and gap[1]) of a kind drawn from kinds, and a
// kill of the acting Sluice when a Canary enters Promoting or Finalising,
// with probability phaseKill.
type injector struct {
	kinds     []string
	gap       [2]time.Duration
	phaseKill float64

	rng, phaseRNG *rand.Rand
	fleet         *fleet
	prom          *prometheus
	webhook       *webhookServer
	logf          func(format string, args ...any)

	mu     sync.Mutex
	faults []fault
	errs   []error
	// lastKill and checksFree space the faults out: kills (see
	// killAllowed), and faults that fail checks (Prometheus, webhook) at least
	// checkSpacing after the last one ended, so that one healthy rollout
	// rarely meets two of them.
	lastKill   time.Time
	checksFree time.Time
	restarted  chan error
}

// checkSpacing is the least time between two faults that fail checks.
const checkSpacing = 60 * time.Second

// run injects faults until ctx ends.
func (in *injector) run(ctx context.Context, phases <-chan phaseChange) {
	in.restarted = make(chan error, 16)
	go func() {
		for err := range in.restarted {
			if err != nil {
				in.mu.Lock()
				in.errs = append(in.errs, fmt.Errorf("restarting a killed sluice: %w", err))
				in.mu.Unlock()
			}
		}
	}()
	next := time.NewTimer(in.draw(in.rng))
	defer next.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-phases:
			phase := flaggerv1beta1.CanaryPhase(p.phase)
			if time.Since(p.at) > time.Second {
				continue // seen while another fault ran: that moment has passed
			}
			if in.phaseKill <= 0 || (phase != flaggerv1beta1.CanaryPhasePromoting && phase != flaggerv1beta1.CanaryPhaseFinalising) {
				continue
			}
			if in.phaseRNG.Float64() >= in.phaseKill || !in.killAllowed() {
				continue
			}
			in.kill(ctx, in.phaseRNG, fmt.Sprintf("as %s entered %s", p.ns, phase), true)
		case <-next.C:
			in.inject(ctx, in.kinds[in.rng.IntN(len(in.kinds))])
			next.Reset(in.draw(in.rng))
		}
	}
}

// draw returns a random duration between gap[0] and gap[1].
func (in *injector) draw(rng *rand.Rand) time.Duration {
	return in.gap[0] + time.Duration(rng.Int64N(int64(in.gap[1]-in.gap[0])+1))
}

// inject injects one fault of kind, waiting for it to end. A fault under
// way when the campaign ends is still undone: what was stopped is started
// again.
func (in *injector) inject(ctx context.Context, kind string) {
	undo := context.WithoutCancel(ctx)
	switch kind {
	case faultKill:
		if in.killAllowed() {
			in.kill(ctx, in.rng, "", false)
		}
	case faultAPIServer:
		down := time.Duration(in.rng.IntN(3000)) * time.Millisecond
		kill := in.rng.IntN(2) == 0
		f := fault{kind: faultAPIServer, at: time.Now(), detail: fmt.Sprintf("down %s, SIGKILL %v", down, kill)}
		if err := suite.cluster.RestartAPIServer(undo, down, kill); err != nil {
			in.fail(fmt.Errorf("restarting kube-apiserver: %w", err))
		}
		in.record(f)
	case faultPrometheus, faultWebhook:
		in.waitChecksFree(ctx)
		down := analysisInterval + time.Duration(1000+in.rng.IntN(5000))*time.Millisecond
		f := fault{kind: kind, at: time.Now()}
		if kind == faultPrometheus {
			f.detail = fmt.Sprintf("for %s", down.Round(100*time.Millisecond))
			in.prom.stop()
			sleep(ctx, down)
			if err := in.prom.start(undo); err != nil {
				in.fail(err)
			}
		} else {
			mode := webhookMode(1 + in.rng.IntN(3))
			f.detail = fmt.Sprintf("%s for %s", mode, down.Round(100*time.Millisecond))
			in.webhook.set(mode)
			sleep(ctx, down)
			in.webhook.set(webhookOK)
		}
		in.checksFree = time.Now().Add(checkSpacing)
		in.record(f)
	}
}

// kill kills the acting Sluice (the leader under leader election) and
// restarts it after 0 to 15 seconds.
func (in *injector) kill(ctx context.Context, rng *rand.Rand, why string, duringPromote bool) {
	delay := time.Duration(rng.IntN(15000)) * time.Millisecond
	f := fault{kind: faultKill, at: time.Now(), duringPromote: duringPromote}
	name, elected := in.fleet.killLeader(ctx, delay, in.restarted)
	if name == "" {
		return // no replica acts now (a standby is taking over)
	}
	if elected {
		f.kind = faultLeaderKill
	}
	in.lastKill = time.Now()
	f.detail = fmt.Sprintf("%s %s, restarted after %s", name, why, delay.Round(100*time.Millisecond))
	in.record(f)
}

// killAllowed spaces the kills out: 20 seconds apart, and under leader
// election 90 seconds, since every kill of the leader stops all releases
// until its Lease (60 seconds) expires.
func (in *injector) killAllowed() bool {
	gap := 20 * time.Second
	if in.fleet.elected() {
		gap = 90 * time.Second
	}
	return time.Since(in.lastKill) >= gap
}

// waitChecksFree waits until a fault that fails checks may start.
func (in *injector) waitChecksFree(ctx context.Context) {
	sleep(ctx, time.Until(in.checksFree))
}

func (in *injector) record(f fault) {
	if f.until.IsZero() {
		f.until = time.Now()
	}
	in.mu.Lock()
	in.faults = append(in.faults, f)
	in.mu.Unlock()
	in.logf("fault: %s %s", f.kind, f.detail)
}

func (in *injector) fail(err error) {
	in.mu.Lock()
	in.errs = append(in.errs, err)
	in.mu.Unlock()
	in.logf("fault injection failed: %v", err)
}

// recorded returns the faults injected so far and the errors met.
func (in *injector) recorded() ([]fault, []error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]fault(nil), in.faults...), append([]error(nil), in.errs...)
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
