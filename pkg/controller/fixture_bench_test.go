package controller

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/webhook"
)

// This file holds what the reconcile benchmarks share: a counter of the
// requests that reach the API server, a clock the benchmark moves, and a
// namespace of Canaries driven by a real manager.

// measuredKey marks the context of the reconciles a benchmark measures, so
// that the requests they send are told apart from everything else.
type measuredKey struct{}

// measuredContext returns a context whose API requests count as the measured ones.
func measuredContext() context.Context {
	return context.WithValue(context.Background(), measuredKey{}, true)
}

// apiCounter counts the requests that reach the API server through the
// rest.Config it wraps. Requests sent with a measured context are split
// into reads (GET: get and list) and writes (POST, PUT, PATCH, DELETE);
// all others (the manager's own reconciles, the event recorder) are
// counted together. Watches are long-lived and not counted.
type apiCounter struct {
	reads, writes, others atomic.Int64
}

// apiCount is a snapshot of an apiCounter.
type apiCount struct{ reads, writes, others int64 }

func (c *apiCounter) snapshot() apiCount {
	return apiCount{reads: c.reads.Load(), writes: c.writes.Load(), others: c.others.Load()}
}

// wrap is a rest.Config WrapTransport.
func (c *apiCounter) wrap(next http.RoundTripper) http.RoundTripper {
	return apiCountingTransport{c: c, next: next}
}

// apiCountingTransport counts each request into its apiCounter and sends it on.
type apiCountingTransport struct {
	c    *apiCounter
	next http.RoundTripper
}

// RoundTrip counts req and sends it.
func (t apiCountingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	watch, _ := strconv.ParseBool(req.URL.Query().Get("watch"))
	switch {
	case watch:
	case req.Context().Value(measuredKey{}) == nil:
		t.c.others.Add(1)
	case req.Method == http.MethodGet || req.Method == http.MethodHead:
		t.c.reads.Add(1)
	default:
		t.c.writes.Add(1)
	}
	return t.next.RoundTrip(req)
}

// report adds the requests counted since before, per reconcile, to the
// benchmark's figures.
func (c *apiCounter) report(b *testing.B, before apiCount, reconciles int) {
	b.Helper()
	after, n := c.snapshot(), float64(reconciles)
	b.ReportMetric(float64(after.reads-before.reads)/n, "api-reads/op")
	b.ReportMetric(float64(after.writes-before.writes)/n, "api-writes/op")
	b.ReportMetric(float64(after.others-before.others)/n, "other-api-requests/op")
}

// benchClock is the reconciler's clock: it stands still until the benchmark
// moves it, so that analysis steps are due exactly when the benchmark says.
type benchClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *benchClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *benchClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// benchShape is a kind of Canary in a fixture: its target and the objects
// the target uses, and the Canary.
type benchShape struct {
	name    string
	objects func(name string) []client.Object
	canary  func(name string) *flaggerv1beta1.Canary
}

// benchInterval is the analysis interval of the benchmarks' Canaries. The
// clock only moves when a benchmark moves it, so the manager's own
// requeues (an interval of real time) never come during a run.
const benchInterval = time.Hour

// benchPlainTarget is a Deployment that uses no ConfigMap or Secret.
func benchPlainTarget(name string) []client.Object { return []client.Object{newDeployment(name, 2)} }

// benchConfiguredTarget is a Deployment whose pods read a ConfigMap (env) and a
// Secret (volume), which config tracking reads on every reconcile.
func benchConfiguredTarget(name string) []client.Object {
	d := newDeployment(name, 2)
	pod := &d.Spec.Template.Spec
	pod.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-env"}}}}
	pod.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "tls", MountPath: "/etc/tls"}}
	pod.Volumes = []corev1.Volume{{Name: "tls", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: name + "-tls"}}}}
	return []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name + "-env"}, Data: map[string]string{"LOG_LEVEL": "info", "FEATURE_X": "on"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-tls"}, Type: corev1.SecretTypeOpaque, Data: map[string][]byte{"tls.key": []byte("key"), "tls.crt": []byte("crt")}},
		d,
	}
}

// benchBlueGreenCanary is a blue/green Canary for provider kubernetes with more
// iterations than any run takes.
func benchBlueGreenCanary(name string) *flaggerv1beta1.Canary {
	return newCanary(name, func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Interval = benchInterval.String()
		cd.Spec.Analysis.Iterations = ptr.To[int32](1 << 30)
	})
}

// benchIstioCanary is a canary release on Istio with the Service settings of a
// typical installation: hosts, gateways, a match, retries, a timeout and
// header operations; its weight grows by step up to 100.
func benchIstioCanary(step int32) func(name string) *flaggerv1beta1.Canary {
	return func(name string) *flaggerv1beta1.Canary {
		return newCanary(name, func(cd *flaggerv1beta1.Canary) {
			cd.Spec.Provider = flaggerv1beta1.ProviderIstio
			s := &cd.Spec.Service
			s.Hosts = []string{name + ".example.com"}
			s.Gateways = []string{"istio-system/public-gateway", "mesh"}
			s.Match = []flaggerv1beta1.HTTPMatchRequest{{URI: &flaggerv1beta1.StringMatch{Prefix: ptr.To("/api")}}}
			s.Timeout = "30s"
			s.Retries = &flaggerv1beta1.HTTPRetry{Attempts: 3, PerTryTimeout: "5s", RetryOn: "gateway-error,connect-failure"}
			s.Headers = &flaggerv1beta1.Headers{Request: &flaggerv1beta1.HeaderOperations{Set: map[string]string{"x-env": "prod"}}}
			a := cd.Spec.Analysis
			a.Interval, a.Iterations = benchInterval.String(), nil
			a.StepWeight, a.MaxWeight = ptr.To(step), ptr.To[int32](100)
			a.Metrics = append(a.Metrics, flaggerv1beta1.CanaryMetric{Name: "latency", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(500.0)}})
		})
	}
}

// reconcileFixture is a namespace of Canaries, a simulated workload
// controller and a manager running the Canary controller through a
// counting rest.Config, with a reconciler the benchmarks also call
// directly.
type reconcileFixture struct {
	ns      string
	r       *CanaryReconciler
	cached  client.Client
	counter *apiCounter
	clock   *benchClock
	// names holds the Canaries of each shape.
	names   map[string][]string
	stopSim context.CancelFunc
}

// newReconcileFixture creates n Canaries, taking the shapes in turn, and
// waits until every one is Initialized.
func newReconcileFixture(b *testing.B, n int, shapes []benchShape) *reconcileFixture {
	b.Helper()
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	f := &reconcileFixture{ns: ns.Name, counter: &apiCounter{}, clock: &benchClock{now: time.Now()}, names: map[string][]string{}}
	simCtx, stopSim := context.WithCancel(ctx)
	f.stopSim = stopSim
	go simulateWorkloads(simCtx, env.Client, ns.Name)

	cfg := rest.CopyConfig(env.Config)
	// No client-side rate limit: the benchmarks reconcile far more often
	// than a controller does, and with sluice's -kubeconfig-qps (100) they
	// would measure the limiter's waits instead of the reconcile.
	cfg.QPS = -1
	cfg.Wrap(f.counter.wrap)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      cache.Options{DefaultNamespaces: map[string]cache.Config{ns.Name: {}}},
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		b.Fatal(err)
	}
	scripted := &scriptedMetrics{}
	scripted.set(0.5) // within every range of the shapes' metrics
	f.r = &CanaryReconciler{
		Client: mgr.GetClient(), Scheme: mgr.GetScheme(), APIReader: mgr.GetAPIReader(),
		Recorder:     mgr.GetEventRecorderFor("sluice"), //nolint:staticcheck // see CanaryReconciler.Recorder
		Workloads:    canary.Config{SelectorLabels: []string{"app", "name", "app.kubernetes.io/name"}, ConfigTracking: true},
		MeshProvider: flaggerv1beta1.ProviderKubernetes,
		Analyzer:     &metrics.Analyzer{Resolver: scripted},
		Webhooks:     &webhook.HTTPCaller{},
		Notifier:     notifier.Nop{},
		MinInterval:  100 * time.Millisecond,
		Now:          f.clock.Now,
	}
	f.cached = mgr.GetClient()
	if err := f.r.SetupWithManager(mgr, 2); err != nil {
		b.Fatal(err)
	}
	mgrCtx, stopMgr := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := mgr.Start(mgrCtx); err != nil {
			b.Errorf("manager: %v", err)
		}
	}()
	b.Cleanup(func() {
		stopSim()
		stopMgr()
		<-done
		_ = env.Client.Delete(context.Background(), ns)
	})

	for i := range n {
		shape := shapes[i%len(shapes)]
		name := fmt.Sprintf("%s-%03d", shape.name, i)
		f.names[shape.name] = append(f.names[shape.name], name)
		for _, o := range append(shape.objects(name), shape.canary(name)) {
			o.SetNamespace(ns.Name)
			if err := env.Client.Create(ctx, o); err != nil {
				b.Fatalf("creating %T %s: %v", o, o.GetName(), err)
			}
		}
	}
	f.waitAll(b, "Initialized", func(cd *flaggerv1beta1.Canary) bool {
		return cd.Status.Phase == flaggerv1beta1.CanaryPhaseInitialized
	})
	return f
}

// waitAll waits until every Canary of the fixture satisfies cond.
func (f *reconcileFixture) waitAll(b *testing.B, what string, cond func(*flaggerv1beta1.Canary) bool) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var list flaggerv1beta1.CanaryList
		if err := env.Client.List(context.Background(), &list, client.InNamespace(f.ns)); err != nil {
			b.Fatal(err)
		}
		var pending []string
		for i := range list.Items {
			if cd := &list.Items[i]; !cond(cd) {
				pending = append(pending, fmt.Sprintf("%s (%s)", cd.Name, cd.Status.Phase))
			}
		}
		if len(pending) == 0 {
			return
		}
		if time.Now().After(deadline) {
			sort.Strings(pending)
			b.Fatalf("timed out waiting until every Canary is %s; not yet: %s", what, strings.Join(pending, ", "))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// settle stops the simulated workload controller, so that nothing changes
// the cluster any more, and waits until the manager has nothing left to do.
func (f *reconcileFixture) settle(b *testing.B) {
	b.Helper()
	f.stopSim()
	f.quiesce(b)
}

// quiesce waits until no request other than the measured ones has reached
// the API server for half a second: the manager is idle and the event
// recorder has sent what it had.
func (f *reconcileFixture) quiesce(b *testing.B) {
	b.Helper()
	deadline := time.Now().Add(time.Minute)
	last, quiet := f.counter.others.Load(), 0
	for quiet < 5 {
		time.Sleep(100 * time.Millisecond)
		now := f.counter.others.Load()
		if now != last {
			last, quiet = now, 0
			if time.Now().After(deadline) {
				b.Fatal("the manager did not settle within a minute: it keeps sending requests")
			}
			continue
		}
		quiet++
	}
}

// request is the reconcile request of Canary name.
func (f *reconcileFixture) request(name string) ctrl.Request {
	return ctrl.Request{NamespacedName: client.ObjectKey{Namespace: f.ns, Name: name}}
}

// fresh waits until the manager's cache holds the last status the
// reconciler wrote for Canary name, as the next reconcile needs, and
// returns that cached Canary.
func (f *reconcileFixture) fresh(b *testing.B, name string) *flaggerv1beta1.Canary {
	b.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var cd flaggerv1beta1.Canary
		if err := f.cached.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: name}, &cd); err != nil {
			b.Fatal(err)
		}
		if !f.r.stale(&cd) {
			return &cd
		}
		if time.Now().After(deadline) {
			b.Fatalf("the cache did not catch up with the last status write of %s", name)
		}
		time.Sleep(time.Millisecond)
	}
}
