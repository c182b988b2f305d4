package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
	"github.com/sluicedev/sluice/pkg/cachescope"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/router"
	"github.com/sluicedev/sluice/pkg/webhook"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	var err error
	env, err = testenv.Start(testenv.Options{Istio: true, GatewayAPI: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the API server: %v\n", err)
		os.Exit(1)
	}
	// The SMI TrafficSplit CRD the router tests use, and every router kind.
	// The workloads' KEDA and Knative kinds too.
	_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join("..", "router", "testdata", "crds"), filepath.Join("..", "canary", "testdata", "crds")}})
	if err == nil {
		err = errors.Join(router.AddToScheme(env.Scheme), canary.AddToScheme(env.Scheme))
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "installing the router CRDs: %v\n", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the API server: %v\n", err)
	}
	os.Exit(code)
}

// unready marks a Deployment whose pods never become available in the
// simulated workload controller.
const unready = "test.sluice.dev/unready"

// unreadyAsPrimary, on a pod template, makes the pods of a Deployment named
// *-primary never available: a revision that passes its analysis and then
// fails as the primary.
const unreadyAsPrimary = "test.sluice.dev/unready-as-primary"

// scriptedMetrics is a metrics.Resolver and metrics.Provider whose value,
// for every metric, the test sets; before the first set there is no data.
type scriptedMetrics struct {
	mu      sync.Mutex
	value   *float64
	offline bool
}

func (s *scriptedMetrics) setOffline(off bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offline = off
}

func (s *scriptedMetrics) set(v float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.value = &v
}

func (s *scriptedMetrics) Resolve(_ context.Context, _ *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (metrics.Provider, string, error) {
	return s, m.Name, nil
}

func (s *scriptedMetrics) RunQuery(context.Context, string) (float64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.value == nil {
		return 0, metrics.ErrNoValues
	}
	return *s.value, nil
}

func (s *scriptedMetrics) IsOnline(context.Context) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.offline {
		return false, errors.New("dial tcp 127.0.0.1:9090: connect: connection refused")
	}
	return true, nil
}

// harness is one test's namespace, manager and simulated cluster controllers.
type harness struct {
	t       *testing.T
	ns      string
	c       client.Client
	metrics *scriptedMetrics
	stop    context.CancelFunc
	done    chan struct{}
}

// newHarness creates a namespace, starts the workload simulator and a
// manager watching only that namespace.
func newHarness(t *testing.T, configure ...func(*CanaryReconciler)) *harness {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "engine-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, ns: ns.Name, c: env.Client, metrics: &scriptedMetrics{}}
	simCtx, stopSim := context.WithCancel(context.Background())
	go simulateWorkloads(simCtx, env.Client, ns.Name)
	t.Cleanup(func() {
		stopSim()
		h.stopManager()
		_ = env.Client.Delete(context.Background(), ns)
	})
	h.startManager(configure...)
	return h
}

// startManager runs a manager with a fresh reconciler, as a restarted
// controller process would.
func (h *harness) startManager(configure ...func(*CanaryReconciler)) {
	h.t.Helper()
	// The cache is scoped as cmd/sluice scopes it, so that every test
	// runs with unrelated workloads kept as skeletons.
	scope := cachescope.New()
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme:     env.Scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      scope.Options(cache.Options{DefaultNamespaces: map[string]cache.Config{h.ns: {}}}),
		NewClient:  scope.NewClient,
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		h.t.Fatal(err)
	}
	r := &CanaryReconciler{
		Client: mgr.GetClient(), Scheme: mgr.GetScheme(), APIReader: mgr.GetAPIReader(),
		Recorder:     mgr.GetEventRecorderFor("sluice"), //nolint:staticcheck // see CanaryReconciler.Recorder
		Workloads:    canary.Config{SelectorLabels: []string{"app", "name", "app.kubernetes.io/name"}, ConfigTracking: true},
		MeshProvider: flaggerv1beta1.ProviderKubernetes,
		Analyzer:     &metrics.Analyzer{Resolver: h.metrics},
		Webhooks:     &webhook.HTTPCaller{},
		Notifier:     notifier.Nop{},
		MinInterval:  100 * time.Millisecond,
	}
	for _, c := range configure {
		c(r)
	}
	if err := r.SetupWithManager(mgr, 2); err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop, h.done = cancel, make(chan struct{})
	go func() {
		defer close(h.done)
		if err := mgr.Start(ctx); err != nil {
			h.t.Errorf("manager: %v", err)
		}
	}()
}

func (h *harness) stopManager() {
	if h.stop != nil {
		h.stop()
		<-h.done
		h.stop = nil
	}
}

// simulateWorkloads plays the Deployment controller and the kubelets: it
// keeps the status of every Deployment in ns as it would be once the pods of
// the current template are available, except for Deployments annotated
// unready, whose pods never become available.
func simulateWorkloads(ctx context.Context, c client.Client, ns string) {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var list appsv1.DeploymentList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			continue
		}
		for i := range list.Items {
			d := &list.Items[i]
			want := ptr.Deref(d.Spec.Replicas, 1)
			available := want
			if d.Annotations[unready] == "true" || (strings.HasSuffix(d.Name, "-primary") && d.Spec.Template.Annotations[unreadyAsPrimary] == "true") {
				available = 0
			}
			st := appsv1.DeploymentStatus{
				ObservedGeneration: d.Generation, Replicas: want, UpdatedReplicas: want,
				ReadyReplicas: available, AvailableReplicas: available, UnavailableReplicas: want - available,
			}
			if d.Status.ObservedGeneration == st.ObservedGeneration && d.Status.Replicas == st.Replicas &&
				d.Status.AvailableReplicas == st.AvailableReplicas && d.Status.UpdatedReplicas == st.UpdatedReplicas {
				continue
			}
			d.Status = st
			_ = c.Status().Update(ctx, d)
		}
	}
}

// eventually polls cond until it holds or waitLong passes; cond returns
// a description of what it saw, printed on failure.
func (h *harness) eventually(what string, cond func() (bool, string)) {
	const timeout = waitLong
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	var seen string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, seen = cond(); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	h.t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, seen)
}

func (h *harness) canary(name string) *flaggerv1beta1.Canary {
	h.t.Helper()
	var cd flaggerv1beta1.Canary
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &cd); err != nil {
		h.t.Fatal(err)
	}
	return &cd
}

// waitPhase waits until the Canary is in phase.
func (h *harness) waitPhase(name string, phase flaggerv1beta1.CanaryPhase) *flaggerv1beta1.Canary {
	h.t.Helper()
	var cd *flaggerv1beta1.Canary
	h.eventually(fmt.Sprintf("canary %s in phase %s", name, phase), func() (bool, string) {
		cd = h.canary(name)
		return cd.Status.Phase == phase, fmt.Sprintf("phase %q weight %d iterations %d failed %d conditions %+v",
			cd.Status.Phase, cd.Status.CanaryWeight, cd.Status.Iterations, cd.Status.FailedChecks, cd.Status.Conditions)
	})
	return cd
}

func (h *harness) deployment(name string) *appsv1.Deployment {
	h.t.Helper()
	var d appsv1.Deployment
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &d); err != nil {
		h.t.Fatal(err)
	}
	return &d
}

func (h *harness) create(objs ...client.Object) {
	h.t.Helper()
	for _, o := range objs {
		o.SetNamespace(h.ns)
		if err := h.c.Create(context.Background(), o); err != nil {
			h.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// setImage changes the target's image: a new revision.
func (h *harness) setImage(name, image string) {
	h.t.Helper()
	d := h.deployment(name)
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Spec.Containers[0].Image = image
	if err := h.c.Patch(context.Background(), d, patch); err != nil {
		h.t.Fatal(err)
	}
}

func newDeployment(name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "app", Image: "ghcr.io/example/podinfo:6.0.0",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}},
				}}},
			},
		},
	}
}

// newCanary is a blue/green Canary for provider kubernetes with fast steps.
func newCanary(name string, mutate ...func(*flaggerv1beta1.Canary)) *flaggerv1beta1.Canary {
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: flaggerv1beta1.CanarySpec{
			Provider:  flaggerv1beta1.ProviderKubernetes,
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: name},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis: &flaggerv1beta1.CanaryAnalysis{
				Interval: "1s", Threshold: 2, Iterations: ptr.To[int32](2),
				Metrics: []flaggerv1beta1.CanaryMetric{{Name: "error-rate", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(1.0)}}},
			},
		},
	}
	for _, m := range mutate {
		m(cd)
	}
	return cd
}
