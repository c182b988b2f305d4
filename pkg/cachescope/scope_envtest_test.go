package cachescope

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	ctrl.SetLogger(logr.Discard())
	var err error
	if env, err = testenv.Start(testenv.Options{}); err != nil {
		fmt.Fprintf(os.Stderr, "starting the API server: %v\n", err)
		os.Exit(1)
	}
	code := m.Run()
	_ = env.Stop()
	os.Exit(code)
}

// countingTransport counts the GETs of one path.
type countingTransport struct {
	next http.RoundTripper
	path string
	gets atomic.Int64
}

func (c *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, c.path) {
		c.gets.Add(1)
	}
	return c.next.RoundTrip(req)
}

// eventually polls cond for up to ten seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestScopedClient_ReadsATargetCachedAsASkeletonOnceUntilItChanges(t *testing.T) {
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "scope-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })

	counter := &countingTransport{path: "/namespaces/" + ns.Name + "/deployments/web"}
	cfg := rest.CopyConfig(env.Config)
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { counter.next = rt; return counter }
	s := New()
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:     s.Options(cache.Options{DefaultNamespaces: map[string]cache.Config{ns.Name: {}}}),
		NewClient: s.NewClient,
	})
	if err != nil {
		t.Fatal(err)
	}
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Start(mctx) }()
	t.Cleanup(func() { stop(); <-done })
	if !mgr.GetCache().WaitForCacheSync(ctx) {
		t.Fatal("cache did not sync")
	}

	labels := map[string]string{"app": "web"}
	web := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "web", Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app:1"}}}},
		},
	}
	if err := env.Client.Create(ctx, web); err != nil {
		t.Fatal(err)
	}
	key := client.ObjectKeyFromObject(web)
	// What the cache holds: a skeleton fails a typed read with a type
	// mismatch, a full Deployment is read.
	cached := func() string {
		err := mgr.GetCache().Get(ctx, key, &appsv1.Deployment{})
		switch {
		case err == nil:
			return "full"
		case strings.Contains(err.Error(), "PartialObjectMetadata"):
			return "skeleton"
		}
		return err.Error()
	}
	// Before a Canary names it, the cache keeps only a skeleton.
	eventually(t, "the Deployment cached as a skeleton", func() bool { return cached() == "skeleton" })

	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "web"},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			Service:   flaggerv1beta1.CanaryService{Port: 80},
			Analysis:  &flaggerv1beta1.CanaryAnalysis{Interval: "10s", StepWeight: ptr.To[int32](10)},
		},
	}
	if err := env.Client.Create(ctx, cd); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the Canary cached", func() bool {
		return mgr.GetCache().Get(ctx, client.ObjectKeyFromObject(cd), &flaggerv1beta1.Canary{}) == nil
	})

	before := counter.gets.Load()
	for range 3 {
		d := &appsv1.Deployment{}
		if err := mgr.GetClient().Get(ctx, key, d); err != nil {
			t.Fatal(err)
		}
		if len(d.Spec.Template.Spec.Containers) != 1 || d.Spec.Template.Spec.Containers[0].Image != "app:1" {
			t.Fatalf("the client returned %+v, want the full Deployment", d.Spec.Template.Spec)
		}
	}
	if got := counter.gets.Load() - before; got != 1 {
		t.Errorf("three reads of a target cached as a skeleton made %d GETs, want 1: the copy read is kept", got)
	}
	if got := cached(); got != "skeleton" {
		t.Fatalf("the cache holds %s, not the skeleton: the reads above did not test the fallback", got)
	}

	// Once the target changes, the cache holds it in full and reads cost nothing.
	patch := client.MergeFrom(web.DeepCopy())
	web.Spec.Template.Spec.Containers[0].Image = "app:2"
	if err := env.Client.Patch(ctx, web, patch); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the target cached in full", func() bool { return cached() == "full" })
	before = counter.gets.Load()
	d := &appsv1.Deployment{}
	if err := mgr.GetClient().Get(ctx, key, d); err != nil {
		t.Fatal(err)
	}
	if d.Spec.Template.Spec.Containers[0].Image != "app:2" || counter.gets.Load() != before {
		t.Errorf("after the change: image %s, %d GETs; want app:2 from the cache", d.Spec.Template.Spec.Containers[0].Image, counter.gets.Load()-before)
	}
}
