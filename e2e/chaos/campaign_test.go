//go:build e2e

package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/meshsim"
)

// config is one campaign.
type config struct {
	seed     uint64
	rollouts int
	lanes    int
	// kinds are the faults injected every gap; phaseKill is the
	// probability of killing Sluice when a Canary enters Promoting or
	// Finalising.
	kinds     []string
	gap       [2]time.Duration
	phaseKill float64
	// modes are how Sluice runs, in turn, each for an equal share of the
	// rollouts.
	modes []fleetMode
	// maxRollout is how long a rollout may take before it counts as
	// stuck.
	maxRollout time.Duration
}

// TestChaos_Smoke is a short campaign for `make e2e`: six rollouts through
// three Canaries (canary, A/B, blue/green) while Sluice is killed and
// Prometheus stopped.
func TestChaos_Smoke(t *testing.T) {
	if *flagCampaign {
		t.Skip("the full campaign runs instead")
	}
	runCampaign(t, config{
		seed: seedFlag(), rollouts: 6, lanes: 3,
		kinds: []string{faultKill, faultPrometheus}, gap: [2]time.Duration{15 * time.Second, 25 * time.Second},
		phaseKill: 0.5, modes: []fleetMode{modeSingle}, maxRollout: 4 * time.Minute,
	})
}

// TestChaos_Campaign is `make chaos`: -chaos.rollouts rollouts with every
// kind of fault, Sluice running in turn as one replica, two replicas with
// leader election, and both with a rate-limited API client.
func TestChaos_Campaign(t *testing.T) {
	if !*flagCampaign {
		t.Skip("run with -chaos.campaign (make chaos)")
	}
	n := *flagRollouts
	lanes := *flagLanes
	if lanes <= 0 {
		// Ten rollouts a Canary: 100 take about 20 minutes on 2 cores.
		lanes = min(12, max(3, (n+9)/10))
	}
	seed := seedFlag()
	rng := rand.New(rand.NewPCG(seed, 1))
	modes := []fleetMode{modeSingle, modeSingleLimited, modePair, modePairLimited}
	rng.Shuffle(len(modes), func(i, j int) { modes[i], modes[j] = modes[j], modes[i] })
	runCampaign(t, config{
		seed: seed, rollouts: n, lanes: lanes,
		kinds: []string{faultKill, faultAPIServer, faultPrometheus, faultWebhook},
		gap:   [2]time.Duration{15 * time.Second, 40 * time.Second}, phaseKill: 0.5,
		modes: modes, maxRollout: 8 * time.Minute,
	})
}

// seedFlag is -chaos.seed, or a seed from the clock.
func seedFlag() uint64 {
	if *flagSeed != 0 {
		return uint64(*flagSeed)
	}
	return uint64(time.Now().UnixNano() % 1_000_000_000)
}

// runCampaign sets up the lanes, runs their rollouts while injecting
// faults, then checks every rollout and prints the table.
func runCampaign(t *testing.T, cfg config) {
	begin := time.Now()
	t.Logf("chaos: seed %d (reproduce: make chaos SEED=%d ROLLOUTS=%d), %d rollouts through %d Canaries, Sluice as %s",
		cfg.seed, cfg.seed, cfg.rollouts, cfg.rollouts, cfg.lanes, strings.Join(modeNames(cfg.modes), ", then "))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	rng := rand.New(rand.NewPCG(cfg.seed, 2))
	c := suite.cluster.Client
	dir := filepath.Join(suite.dir, t.Name())
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	lanes := planLanes(cfg, rng)

	// The lanes' workloads and their simulated meshes, one Prometheus
	// scraping them all, the flaky webhook, Sluice, the recorder, and then
	// the Canaries.
	for _, ns := range laneNamespaces(lanes) {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			t.Fatalf("creating namespace %s: %v", ns, err)
		}
	}
	targets := map[string]string{}
	for _, l := range lanes {
		if err := c.Create(ctx, l.target()); err != nil {
			t.Fatalf("creating the target of %s: %v", l.ns, err)
		}
		sim, err := meshsim.Start(ctx, meshsim.Options{Config: suite.cluster.Config, Namespace: l.ns, Workload: app})
		if err != nil {
			t.Fatalf("starting the simulated mesh of %s: %v", l.ns, err)
		}
		t.Cleanup(sim.Stop)
		l.sim = sim
		targets[l.ns] = sim.MetricsURL
	}
	prom, err := newPrometheus(ctx, filepath.Join(dir, "prometheus"), targets)
	if err != nil {
		t.Fatal(err)
	}
	defer prom.stop()
	hook, err := newWebhookServer()
	if err != nil {
		t.Fatal(err)
	}
	defer hook.close()
	fl := &fleet{dir: dir, kubeconfig: suite.kubeconfig, metricsServer: prom.URL}
	if err := fl.reconfigure(cfg.modes[0]); err != nil {
		t.Fatal(err)
	}
	defer fl.stop()
	rec, err := startRecorder(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var traffic sync.WaitGroup
	trafficCtx, stopTraffic := context.WithCancel(ctx)
	defer func() { stopTraffic(); traffic.Wait() }()
	for _, l := range lanes {
		if err := c.Create(ctx, l.canary(hook.URL)); err != nil {
			t.Fatalf("creating the Canary of %s: %v", l.ns, err)
		}
		l.traffic(trafficCtx, &traffic)
	}
	waitInitialized(t, rec, lanes, 3*time.Minute)
	t.Logf("chaos: %d Canaries initialized in %s", len(lanes), time.Since(begin).Round(time.Second))

	// The rollouts, with faults.
	in := &injector{
		kinds: cfg.kinds, gap: cfg.gap, phaseKill: cfg.phaseKill,
		rng: rand.New(rand.NewPCG(cfg.seed, 3)), phaseRNG: rand.New(rand.NewPCG(cfg.seed, 4)),
		fleet: fl, prom: prom, webhook: hook, logf: func(f string, a ...any) { t.Logf("%6s "+f, append([]any{since(begin)}, a...)...) },
	}
	faultCtx, stopFaults := context.WithCancel(ctx)
	var injecting sync.WaitGroup
	injecting.Go(func() { in.run(faultCtx, rec.phases) })
	var completed atomic.Int32
	segment := 0
	var segMu sync.Mutex
	done := func(r *rollout) {
		n := int(completed.Add(1))
		t.Logf("%6s rollout %s (%s, faulty %v) %s%s after %s", since(begin), r.id(), r.image, r.faulty, r.phase, r.stuck,
			r.ended.Sub(r.released).Round(time.Second))
		segMu.Lock()
		defer segMu.Unlock()
		if want := n * len(cfg.modes) / cfg.rollouts; want > segment && want < len(cfg.modes) {
			segment = want
			f := fault{kind: faultReconfig, at: time.Now(), detail: "to " + cfg.modes[want].name}
			if err := fl.reconfigure(cfg.modes[want]); err != nil {
				in.fail(err)
			}
			in.record(f)
		}
	}
	var running sync.WaitGroup
	for _, l := range lanes {
		laneRNG := rand.New(rand.NewPCG(cfg.seed, uint64(100+l.idx)))
		running.Go(func() { l.run(ctx, c, rec, laneRNG, cfg.maxRollout, done) })
	}
	running.Wait()
	stopFaults()
	injecting.Wait()
	ran := time.Since(begin)

	// The checks, from the record.
	faults, errs := in.recorded()
	for _, err := range errs {
		t.Errorf("fault injection: %v", err)
	}
	if err := fl.crashed(); err != nil {
		t.Errorf("a Sluice process died on its own: %v", err)
	}
	var sum tally
	for _, l := range lanes {
		obs, templates := rec.history(l.ns)
		events := laneEvents(t, l.ns)
		for _, problem := range checkTemplates(l, templates) {
			sum.violations++
			t.Errorf("lane %s: %s\n%s", l.ns, problem, templatesText(templates))
		}
		for i, r := range l.rollouts {
			var next *rollout
			if i+1 < len(l.rollouts) {
				next = l.rollouts[i+1]
			}
			if r.released.IsZero() && r.stuck == "" {
				continue // not released: its lane stopped at a stuck rollout
			}
			o := checkRollout(r, next, obs, templates, events, faults)
			sum.add(o)
			if len(o.violations) > 0 {
				t.Errorf("seed %d: rollout %s violates the guarantees:\n  %s\n%s", cfg.seed, r.id(),
					strings.Join(o.violations, "\n  "), history(o, obs, templates, events))
			}
		}
	}
	t.Log("\n" + table(cfg, sum, faults, ran))
	if fl.earlyExits > 0 {
		t.Logf("Sluice exited at start-up %d times while the API server was away, and was started again, as the kubelet would.", fl.earlyExits)
	}
	if sum.healthy+sum.faulty < cfg.rollouts {
		t.Errorf("seed %d: only %d of %d rollouts were released", cfg.seed, sum.healthy+sum.faulty, cfg.rollouts)
	}
}

// planLanes draws the lanes' strategies and webhooks and deals the
// rollouts, a third of them faulty, to the lanes in turn.
func planLanes(cfg config, rng *rand.Rand) []*lane {
	strategies := []string{strategyCanary, strategyAB, strategyBlueGreen}
	rng.Shuffle(len(strategies), func(i, j int) { strategies[i], strategies[j] = strategies[j], strategies[i] })
	lanes := make([]*lane, cfg.lanes)
	for i := range lanes {
		lanes[i] = &lane{idx: i + 1, ns: fmt.Sprintf("chaos-%d", i+1), strategy: strategies[i%len(strategies)],
			webhook: i%3 == 1 || (cfg.lanes < 3 && i == 0)}
	}
	faulty := map[int]bool{}
	for _, k := range rng.Perm(cfg.rollouts)[:cfg.rollouts/3] {
		faulty[k] = true
	}
	for k := range cfg.rollouts {
		l := lanes[k%len(lanes)]
		n := len(l.rollouts) + 1
		l.rollouts = append(l.rollouts, &rollout{lane: l, n: n, image: image + tag(l.idx, n), faulty: faulty[k]})
	}
	return lanes
}

func laneNamespaces(lanes []*lane) []string {
	out := make([]string, len(lanes))
	for i, l := range lanes {
		out[i] = l.ns
	}
	return out
}

// waitInitialized waits until every lane's Canary is Initialized.
func waitInitialized(t *testing.T, rec *recorder, lanes []*lane, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, l := range lanes {
		for rec.latest(l.ns).phase != string(flaggerv1beta1.CanaryPhaseInitialized) {
			if time.Now().After(deadline) {
				t.Fatalf("the Canary of %s is %q after %s, want Initialized", l.ns, rec.latest(l.ns).phase, timeout)
			}
			time.Sleep(250 * time.Millisecond)
		}
	}
}

// checkTemplates checks that every pod template the lane's primary ran is
// its initial revision or one of its released revisions.
func checkTemplates(l *lane, templates []templateChange) []string {
	known := map[string]bool{image + tag(l.idx, 0): true}
	for _, r := range l.rollouts {
		known[r.image] = true
	}
	var out []string
	for _, t := range templates {
		if !known[t.image] {
			out = append(out, fmt.Sprintf("the primary ran %s, which was never released", t.image))
		}
	}
	if len(templates) == 0 || templates[0].image != image+tag(l.idx, 0) {
		out = append(out, "the primary did not start at the initial revision")
	}
	return out
}

func templatesText(templates []templateChange) string {
	var b strings.Builder
	for _, t := range templates {
		fmt.Fprintf(&b, "  %s generation %d %s\n", t.at.Format("15:04:05.000"), t.generation, t.image)
	}
	return b.String()
}

// laneEvents lists the events of a namespace.
func laneEvents(t *testing.T, ns string) []corev1.Event {
	var events corev1.EventList
	if err := suite.cluster.Client.List(context.Background(), &events, client.InNamespace(ns)); err != nil {
		t.Errorf("listing the events of %s: %v", ns, err)
	}
	return events.Items
}

// add counts one rollout's outcome.
func (s *tally) add(o outcome) {
	r := o.r
	if r.faulty {
		s.faulty++
	} else {
		s.healthy++
	}
	switch {
	case r.phase == "":
		s.stuck++
	case o.promotions > 0 && r.phase == string(flaggerv1beta1.CanaryPhaseSucceeded):
		s.promoted++
	default:
		s.rolledBack++
	}
	if o.byFaults {
		s.byFaults++
	}
	if r.faulty && o.promotions > 0 {
		s.faultyPromoted++
	}
	if o.promotions > 1 {
		s.doublePromotions++
	}
	if o.lostStatus {
		s.lostStatus++
	}
	if o.fastSteps {
		s.fastSteps++
	}
	if len(o.violations) > 0 {
		s.violations++
	}
}

// table renders the campaign's summary.
func table(cfg config, s tally, faults []fault, ran time.Duration) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Chaos campaign: seed %d, %d rollouts through %d Canaries in %s, on %s (%d cores, %s/%s), %s\n",
		cfg.seed, cfg.rollouts, cfg.lanes, ran.Round(time.Second), cpuModel(), runtime.NumCPU(), runtime.GOOS, runtime.GOARCH,
		time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Sluice ran as: %s\n\n", strings.Join(modeNames(cfg.modes), " → "))
	b.WriteString("| fault | injected | during Promoting/Finalising |\n|---|---|---|\n")
	for _, k := range faultKinds {
		n, during := 0, 0
		for _, f := range faults {
			if f.kind == k {
				n++
				if f.duringPromote {
					during++
				}
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %d |\n", k, n, during)
	}
	b.WriteString("\n| rollouts | healthy | faulty | promoted | rolled back | (healthy, by injected faults) | stuck | faulty promoted | double promotions | lost status | steps faster than the interval | violations |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d | %d |\n",
		s.healthy+s.faulty, s.healthy, s.faulty, s.promoted, s.rolledBack, s.byFaults, s.stuck,
		s.faultyPromoted, s.doublePromotions, s.lostStatus, s.fastSteps, s.violations)
	return b.String()
}

func modeNames(modes []fleetMode) []string {
	out := make([]string, len(modes))
	for i, m := range modes {
		out[i] = m.name
	}
	return out
}

// since is the time since begin, for log lines.
func since(begin time.Time) time.Duration { return time.Since(begin).Round(100 * time.Millisecond) }

// cpuModel is the processor's name from /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}
