package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/cluster"
	"github.com/sluicedev/sluice/internal/testenv"
)

const (
	// bedNamespace holds the plain Deployments that measure the bed.
	bedNamespace = "bench-bed"
	// namespace holds the targets, Canaries and unrelated objects; the
	// controller watches it (Flagger's -namespace).
	namespace = "bench"
	// workers is how many objects the benchmark creates at once.
	workers = 16
)

// result is what one controller measured, phase by phase.
type result struct {
	Controller controllerSpec `json:"controller"`
	Argv       []string       `json:"argv"`
	// Dir holds the control plane's and the controller's logs and the
	// audit log.
	Dir  string     `json:"dir"`
	Bed  bedResult  `json:"bed"`
	Init initResult `json:"init"`
	Idle idleResult `json:"idle"`
	// Noise is phase 5: idle again once -noise more unrelated objects
	// exist (zero without -noise).
	Noise   noiseResult   `json:"noise"`
	Rollout rolloutResult `json:"rollout"`
	Failing rolloutResult `json:"failing"`
	// Profiles are the files -pprof saved, or why it could not.
	Profiles []string `json:"profiles,omitempty"`
	// PeakRSSMiB is the controller's largest resident set (VmHWM).
	PeakRSSMiB float64 `json:"peakRSSMiB"`
	// Problems are the checks that failed; a run with problems exits 1.
	Problems []string `json:"problems"`
}

// run is one controller's benchmark on its own control plane.
type run struct {
	cfg    config
	spec   controllerSpec
	res    *result
	c      client.Client
	rest   *rest.Config
	scheme *runtime.Scheme
	stub   *stub
	audit  *auditLog
	w      *watcher
	proc   *controllerProc
	// prof is nil without -pprof.
	prof *profiler
	// metricsURL is the controller's /metrics.
	metricsURL string
	// slow are the Canaries with a slow rollout webhook.
	slow map[string]bool
}

// benchController runs every phase for one controller on a new control
// plane in dir.
func benchController(ctx context.Context, cfg config, spec controllerSpec, dir string) (*result, error) {
	r := &run{cfg: cfg, spec: spec, res: &result{Controller: spec, Dir: dir}, slow: map[string]bool{}}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return r.res, fmt.Errorf("creating %s: %w", dir, err)
	}
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o600); err != nil {
		return r.res, fmt.Errorf("writing the audit policy: %w", err)
	}
	r.audit = &auditLog{path: filepath.Join(dir, "audit.log")}
	r.logf("starting the control plane (%d nodes)", cfg.nodes())
	cl, err := cluster.Start(ctx, cluster.Options{
		Nodes: cfg.nodes(), Dir: filepath.Join(dir, "cluster"), Keep: true, Log: cfg.Log,
		StartTimeout: 3 * time.Minute, ControllerManagerFlags: cfg.controllerManagerFlags(),
		APIServerFlags: map[string]string{
			"audit-policy-file": policy,
			"audit-log-path":    r.audit.path,
			"audit-log-format":  "json",
			// Three Services per Canary: envtest's /24 runs out at 84.
			"service-cluster-ip-range": "10.0.0.0/16",
		},
	})
	if err != nil {
		return r.res, err
	}
	defer func() { _ = cl.Stop() }()
	// The benchmark's watches end before the API server stops, which
	// otherwise waits for them.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	r.rest = rest.CopyConfig(cl.Config)
	r.rest.QPS, r.rest.Burst = 1000, 2000
	if r.scheme, err = testenv.NewScheme(); err != nil {
		return r.res, err
	}
	if r.c, err = client.New(r.rest, client.Options{Scheme: r.scheme}); err != nil {
		return r.res, fmt.Errorf("creating the benchmark's client: %w", err)
	}
	if r.stub, err = startStub(cfg.SlowDelay); err != nil {
		return r.res, err
	}
	defer r.stub.Close()

	if err := r.bed(ctx); err != nil {
		return r.res, fmt.Errorf("measuring the bed: %w", err)
	}
	if err := r.prepare(ctx); err != nil {
		return r.res, err
	}
	if err := r.waitBedGone(ctx); err != nil {
		return r.res, err
	}
	kubeconfig, err := cl.WriteKubeconfig("controller.kubeconfig", controllerUser)
	if err != nil {
		return r.res, err
	}
	if err := r.startController(ctx, kubeconfig, dir); err != nil {
		return r.res, err
	}
	defer func() { _ = r.proc.stop() }()

	if err := r.initialize(ctx); err != nil {
		return r.res, fmt.Errorf("phase 1: %w", err)
	}
	r.profileHeap(ctx, "heap-initialized.pb.gz")
	if err := r.idle(ctx); err != nil {
		return r.res, fmt.Errorf("phase 2: %w", err)
	}
	r.profileHeap(ctx, "heap-idle.pb.gz")
	rollouts, failing := r.rolloutSets()
	if r.res.Rollout, err = r.rollouts(ctx, "phase 3", rollouts, nil); err != nil {
		return r.res, fmt.Errorf("phase 3: %w", err)
	}
	r.profileHeap(ctx, "heap-rollout.pb.gz")
	if r.res.Failing, err = r.rollouts(ctx, "phase 4", failing, failingOf(failing)); err != nil {
		return r.res, fmt.Errorf("phase 4: %w", err)
	}
	// The noise comes last: kube-controller-manager works through its
	// ReplicaSets for minutes, which would slow the releases of phases 3
	// and 4 against the bed's figures, measured without it.
	if r.cfg.Noise > 0 {
		if err := r.noise(ctx); err != nil {
			return r.res, fmt.Errorf("phase 5: %w", err)
		}
		r.profileHeap(ctx, "heap-noise.pb.gz")
	}
	u, err := r.proc.usage()
	if err != nil {
		return r.res, err
	}
	r.res.PeakRSSMiB = mib(u.PeakRSS)
	return r.res, nil
}

// profileHeap saves a heap profile with -pprof.
func (r *run) profileHeap(ctx context.Context, name string) {
	if r.prof != nil {
		r.prof.fetch(ctx, "/debug/pprof/heap", name, 30*time.Second)
		r.res.Profiles = r.prof.files()
	}
}

// prepare creates the controller's namespace, the MetricTemplate and N
// unrelated objects before the controller starts, and waits until
// kube-controller-manager has caught up with the unrelated Deployments (a
// ReplicaSet each): its backlog would otherwise delay the primaries of
// phase 1.
func (r *run) prepare(ctx context.Context) error {
	if err := r.c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}); err != nil {
		return fmt.Errorf("creating namespace %s: %w", namespace, err)
	}
	var err error
	if r.w, err = startWatcher(ctx, r.rest, r.scheme, namespace, &flaggerv1beta1.Canary{}, &appsv1.Deployment{}); err != nil {
		return err
	}
	if err := r.c.Create(ctx, metricTemplate(namespace, r.stub.URL)); err != nil {
		return fmt.Errorf("creating the MetricTemplate: %w", err)
	}
	return r.createUnrelated(ctx, 0, r.cfg.N)
}

// createUnrelated creates the unrelated objects from ..to-1 and waits
// until kube-controller-manager has observed their Deployments.
func (r *run) createUnrelated(ctx context.Context, from, to int) error {
	begin := time.Now()
	n := to - from
	name := func(i int) string { return unrelatedName("other", from+i) }
	if err := createAll(ctx, r.c, n, func(i int) []client.Object { return unrelated(namespace, name(i)) }); err != nil {
		return err
	}
	r.logf("created %d unrelated Deployments (0 replicas), ConfigMaps and Secrets in %s", n, since(begin))
	observed := func() int { return countRolled(r.w, n, name, func(int) int64 { return 1 }) }
	if err := waitFor(ctx, r.cfg.bedTimeout()+time.Duration(n)*50*time.Millisecond, "the unrelated Deployments observed",
		func() bool { return observed() == n }, func() string { return fmt.Sprintf("%d of %d", observed(), n) }); err != nil {
		return err
	}
	r.logf("kube-controller-manager observed them after %s", since(begin))
	return nil
}

// startController starts the controller under test with its own user.
func (r *run) startController(ctx context.Context, kubeconfig, dir string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	vars := map[string]string{"kubeconfig": kubeconfig, "metrics": r.stub.URL, "namespace": namespace, "port": strconv.Itoa(port)}
	if r.res.Argv, err = r.spec.argv(vars); err != nil {
		return err
	}
	begin := time.Now()
	if r.proc, err = startController(ctx, r.spec, vars, port, filepath.Join(dir, r.spec.Label+".log")); err != nil {
		return err
	}
	r.res.Init.StartSeconds = seconds(time.Since(begin))
	r.metricsURL = "http://127.0.0.1:" + strconv.Itoa(port) + "/metrics"
	if r.cfg.Pprof {
		r.prof = &profiler{base: "http://127.0.0.1:" + strconv.Itoa(port), dir: dir}
	}
	r.logf("%s ready in %s (log: %s)", r.spec.Label, since(begin), r.proc.logPath)
	return nil
}

// rolloutSets are the targets of phase 3 and phase 4: M each, distinct
// when there are enough Canaries.
func (r *run) rolloutSets() (rollouts, failing []string) {
	m := r.cfg.rollouts()
	for i := range m {
		rollouts = append(rollouts, targetName(i))
		failing = append(failing, targetName((m+i)%r.cfg.N))
	}
	return rollouts, failing
}

// failingOf picks a tenth of names (at least one), spread over them, to
// fail their analysis.
func failingOf(names []string) []string {
	n := max(1, (len(names)+9)/10)
	step := len(names) / n
	out := make([]string, 0, n)
	for i := range n {
		out = append(out, names[i*step])
	}
	return out
}

// problem records a failed check.
func (r *run) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.res.Problems = append(r.res.Problems, msg)
	r.logf("PROBLEM: %s", msg)
}

func (r *run) logf(format string, args ...any) {
	_, _ = fmt.Fprintf(r.cfg.Log, "bench [%s] %s %s\n", r.spec.Label, time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// since is the time elapsed since t, rounded for people.
func since(t time.Time) time.Duration { return time.Since(t).Round(100 * time.Millisecond) }

func seconds(d time.Duration) float64 {
	return float64(d.Round(10*time.Millisecond)) / float64(time.Second)
}

func mib(b int64) float64 { return float64(b*10/(1<<20)) / 10 }
