package canary_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
	"github.com/sluicedev/sluice/pkg/canary"
)

// k8s is a direct client of the API server shared by all tests.
var k8s client.WithWatch

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	// The KEDA and Knative kinds: their minimal CRDs (the Knative Service's
	// is the router tests') and Go types.
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("testdata", "crds"), filepath.Join("..", "router", "testdata", "crds", "serving.knative.dev_services.yaml")}, ErrorIfPathMissing: true,
	}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := canary.AddToScheme(env.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	k8s, err = client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// fixture is one test's namespace and the Deps handed to the workloads.
// Its Client counts writes and its Reader counts reads per object.
type fixture struct {
	t      *testing.T
	ns     string
	deps   canary.Deps
	writes atomic.Int32

	mu    sync.Mutex
	reads map[string]int
}

// defaultConfig is Flagger's default flags.
func defaultConfig() canary.Config {
	return canary.Config{
		SelectorLabels: []string{"app", "name", "app.kubernetes.io/name"},
		ConfigTracking: true,
	}
}

// newFixture creates a namespace for the test and Deps with cfg.
func newFixture(t *testing.T, cfg canary.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, reads: map[string]int{}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "canary-"}}
	if err := k8s.Create(f.ctx(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), ns) })
	f.ns = ns.Name

	count := func() { f.writes.Add(1) }
	writer := interceptor.NewClient(k8s, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			count()
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			count()
			return c.Update(ctx, obj, opts...)
		},
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			count()
			return c.Patch(ctx, obj, p, opts...)
		},
		Delete: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.DeleteOption) error {
			count()
			return c.Delete(ctx, obj, opts...)
		},
	})
	reader := interceptor.NewClient(k8s, interceptor.Funcs{
		Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			f.mu.Lock()
			f.reads[fmt.Sprintf("%T/%s", obj, key.Name)]++
			f.mu.Unlock()
			return c.Get(ctx, key, obj, opts...)
		},
	})
	f.deps = canary.Deps{Client: writer, Reader: reader, Config: cfg}
	return f
}

// ctx is the test's context.
func (f *fixture) ctx() context.Context { return f.t.Context() }

// readsOf returns how often the Reader read the object of obj's type and
// name.
func (f *fixture) readsOf(obj client.Object, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads[fmt.Sprintf("%T/%s", obj, name)]
}

// create creates objects in the test's namespace, without counting.
func (f *fixture) create(objs ...client.Object) {
	f.t.Helper()
	for _, obj := range objs {
		obj.SetNamespace(f.ns)
		if err := k8s.Create(f.ctx(), obj); err != nil {
			f.t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
		}
	}
}

// get reads an object of the test's namespace.
func (f *fixture) get(name string, obj client.Object) client.Object {
	f.t.Helper()
	if err := k8s.Get(f.ctx(), client.ObjectKey{Namespace: f.ns, Name: name}, obj); err != nil {
		f.t.Fatalf("reading %T %s: %v", obj, name, err)
	}
	return obj
}

// update reads an object, applies mutate and writes it back, without
// counting.
func update[T client.Object](f *fixture, name string, obj T, mutate func(T)) T {
	f.t.Helper()
	f.get(name, obj)
	mutate(obj)
	if err := k8s.Update(f.ctx(), obj); err != nil {
		f.t.Fatalf("updating %T %s: %v", obj, name, err)
	}
	return obj
}

// canary creates a Canary for the target of the given kind, named podinfo.
func (f *fixture) canary(kind string, mutate ...func(*flaggerv1beta1.Canary)) *flaggerv1beta1.Canary {
	f.t.Helper()
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: kind, Name: "podinfo"},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis:  &flaggerv1beta1.CanaryAnalysis{Interval: "1m", Threshold: 5, Iterations: ptr.To[int32](3)},
		},
	}
	for _, m := range mutate {
		m(cd)
	}
	f.create(cd)
	return cd
}

// workload returns the Workload for cd.
func (f *fixture) workload(cd *flaggerv1beta1.Canary) canary.Workload {
	f.t.Helper()
	w, err := canary.New(cd, f.deps)
	if err != nil {
		f.t.Fatal(err)
	}
	return w
}

// must fails the test on err.
func (f *fixture) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

// observe calls Observe and fails the test on error.
func (f *fixture) observe(w canary.Workload, cd *flaggerv1beta1.Canary) *canary.State {
	f.t.Helper()
	st, err := w.Observe(f.ctx(), cd)
	f.must(err)
	return st
}

// promote promotes the revision the target holds now, as the engine does
// once it has analysed it.
func (f *fixture) promote(w canary.Workload, cd *flaggerv1beta1.Canary) error {
	f.t.Helper()
	return w.Promote(f.ctx(), cd, f.observe(w, cd).Revision)
}

// podTemplate is podinfo's pod template.
func podTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{
			Labels:      map[string]string{"app": "podinfo", "tier": "web"},
			Annotations: map[string]string{"prometheus.io/scrape": "true"},
		},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:  "podinfo",
				Image: "ghcr.io/stefanprodan/podinfo:6.0.0",
				Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 9898}, {Name: "grpc", ContainerPort: 9999}},
			}},
		},
	}
}

// deployment returns podinfo's Deployment with 3 replicas.
func deployment(mutate ...func(*appsv1.Deployment)) *appsv1.Deployment {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Labels: map[string]string{"app": "podinfo"}},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](3),
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			Template: podTemplate(),
		},
	}
	for _, m := range mutate {
		m(d)
	}
	return d
}

// daemonSet returns podinfo's DaemonSet.
func daemonSet(mutate ...func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Labels: map[string]string{"app": "podinfo"}},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
			Template: podTemplate(),
		},
	}
	for _, m := range mutate {
		m(ds)
	}
	return ds
}

// hpa returns an HPA named podinfo for the podinfo Deployment.
func hpa(minReplicas, maxReplicas int32) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    ptr.To(minReplicas),
			MaxReplicas:    maxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name:   corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](70)},
				},
			}},
		},
	}
}

// withHPA points the Canary at the podinfo HPA.
func withHPA(cd *flaggerv1beta1.Canary) {
	cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "podinfo"}
}

// assertControlledBy fails unless obj's controller is cd.
func assertControlledBy(t *testing.T, obj client.Object, cd *flaggerv1beta1.Canary) {
	t.Helper()
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != cd.UID || ref.Kind != "Canary" || ref.Name != cd.Name {
		t.Errorf("%T %s: controller = %+v, want Canary %s (%s)", obj, obj.GetName(), ref, cd.Name, cd.UID)
	}
}
