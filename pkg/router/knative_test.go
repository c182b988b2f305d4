package router_test

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

// newKnativeService creates the Knative Service podinfo in ns, with a
// template the router must leave alone, and sets its status to name its
// latest created revision, as Knative's controller would.
func newKnativeService(t *testing.T, ns, revision string) {
	t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": "podinfo", "namespace": ns},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"image": "ghcr.io/stefanprodan/podinfo:6.0.0"},
		}}}},
	}}
	if err := env.Client.Create(t.Context(), u); err != nil {
		t.Fatalf("creating the Knative Service: %v", err)
	}
	setLatestRevision(t, ns, revision)
}

// setLatestRevision plays Knative's controller creating a revision.
func setLatestRevision(t *testing.T, ns, revision string) {
	t.Helper()
	svc := &knativev1.Service{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, svc); err != nil {
		t.Fatal(err)
	}
	svc.Status.LatestCreatedRevisionName = revision
	if err := env.Client.Status().Update(t.Context(), svc); err != nil {
		t.Fatalf("setting the Knative Service's status: %v", err)
	}
}

// knativeService reads the Knative Service podinfo unstructured, so that
// the test sees every field.
func knativeService(t *testing.T, ns string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("serving.knative.dev/v1")
	u.SetKind("Service")
	if err := env.Client.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "podinfo"}, u); err != nil {
		t.Fatal(err)
	}
	return u
}

// newKnativeCanary creates a Knative Service and a Canary that targets it.
func newKnativeCanary(t *testing.T) (*flaggerv1beta1.Canary, router.Interface, func() int32) {
	t.Helper()
	ns := newNamespace(t)
	newKnativeService(t, ns, "podinfo-00001")
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.TargetRef = flaggerv1beta1.LocalObjectReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "podinfo"}
		s.Analysis.Iterations = nil
		s.Analysis.StepWeight, s.Analysis.MaxWeight = ptrInt32(10), ptrInt32(50)
	})
	c, writes := countingClient(t)
	r, err := router.New(flaggerv1beta1.ProviderKnative, router.Deps{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	return cd, r, func() int32 { return writes.Swap(0) }
}

func ptrInt32(v int32) *int32 { return &v }

func TestKnativeRouter_SplitsBetweenThePrimaryAndTheLatestRevision(t *testing.T) {
	t.Parallel()
	cd, r, writes := newKnativeCanary(t)
	ctx, ns := testContext(t), cd.Namespace
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if got := knativeService(t, ns).GetAnnotations()[router.KnativePrimaryRevisionAnnotation]; got != "podinfo-00001" {
		t.Fatalf("primary revision annotation = %q, want podinfo-00001", got)
	}
	setLatestRevision(t, ns, "podinfo-00002")
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if got := knativeService(t, ns).GetAnnotations()[router.KnativePrimaryRevisionAnnotation]; got != "podinfo-00001" {
		t.Errorf("after a new revision, Reconcile moved the primary revision to %q", got)
	}
	for _, step := range []struct {
		routes router.Routes
		golden string
	}{
		{router.Routes{Primary: 100}, "primary-100-0"},
		{router.Routes{Primary: 90, Canary: 10}, "canary-90-10"},
		{router.Routes{Primary: 80, Canary: 20}, "canary-80-20"},
	} {
		writes()
		if err := r.SetRoutes(ctx, cd, podinfo, step.routes); err != nil {
			t.Fatalf("SetRoutes(%+v): %v", step.routes, err)
		}
		u := knativeService(t, ns)
		traffic, _, _ := unstructured.NestedSlice(u.Object, "spec", "traffic")
		assertGolden(t, "knative/"+step.golden+".golden", specYAML(t, traffic))
		rendered, err := router.RenderKnativeTraffic(cd, "podinfo-00001", step.routes)
		if err != nil {
			t.Fatal(err)
		}
		assertGolden(t, "knative/"+step.golden+".golden", specYAML(t, rendered))
		if _, ok, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers"); !ok {
			t.Errorf("the Knative Service lost its template: %v", u.Object["spec"])
		}
		if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != step.routes {
			t.Errorf("GetRoutes = %+v, %v; want %+v", got, err, step.routes)
		}
		if err := r.SetRoutes(ctx, cd, podinfo, step.routes); err != nil {
			t.Fatal(err)
		}
		if n := writes(); n != 1 {
			t.Errorf("SetRoutes(%+v) twice wrote %d times, want once", step.routes, n)
		}
	}

	// A user's edit of the split is reported, then corrected.
	patchAs(t, knativeService(t, ns), `{"spec":{"traffic":[{"latestRevision":true,"percent":50},{"revisionName":"podinfo-00001","percent":50}]}}`)
	if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Primary: 50, Canary: 50}) {
		t.Errorf("GetRoutes after the edit = %+v, %v; want 50/50", got, err)
	}
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 80, Canary: 20}); err != nil {
		t.Fatal(err)
	}
	if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Primary: 80, Canary: 20}) {
		t.Errorf("GetRoutes after SetRoutes = %+v, %v; want 80/20", got, err)
	}

	// Finalize hands the Service back to Knative's own routing.
	if err := r.Finalize(ctx, cd, podinfo); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	u := knativeService(t, ns)
	traffic, _, _ := unstructured.NestedSlice(u.Object, "spec", "traffic")
	if _, ok := u.GetAnnotations()[router.KnativePrimaryRevisionAnnotation]; ok || len(traffic) != 1 ||
		traffic[0].(map[string]any)["latestRevision"] != true || traffic[0].(map[string]any)["percent"] != int64(100) {
		t.Errorf("after Finalize annotations %v, traffic %v; want no primary revision and all traffic to the latest", u.GetAnnotations(), traffic)
	}
}

func TestKnativeRouter_RefusesWhatItCannotRoute(t *testing.T) {
	t.Parallel()
	cd, r, writes := newKnativeCanary(t)
	ctx := testContext(t)
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 90, Canary: 10}); err == nil || !strings.Contains(err.Error(), "no flagger.app/primary-revision annotation") {
		t.Errorf("SetRoutes before Reconcile: error = %v, want one about the missing annotation", err)
	}
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	writes()
	mirrored := cd.DeepCopy()
	mirroring(mirrored.Spec.Analysis)
	if err := r.SetRoutes(ctx, mirrored, podinfo, router.Routes{Primary: 100, Mirrored: true}); !problem.Is(err, problem.UnsupportedRouting) || !strings.Contains(err.Error(), "cannot mirror traffic") {
		t.Errorf("mirrored SetRoutes error = %v, want a ConfigError", err)
	}
	ab := cd.DeepCopy()
	abTesting(ab.Spec.Analysis)
	if err := r.SetRoutes(ctx, ab, podinfo, router.Routes{Canary: 100}); !problem.Is(err, problem.UnsupportedRouting) || !strings.Contains(err.Error(), "cannot route A/B tests") {
		t.Errorf("A/B SetRoutes error = %v, want a ConfigError", err)
	}
	deployment := cd.DeepCopy()
	deployment.Spec.TargetRef = flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}
	if err := r.Reconcile(ctx, deployment, podinfo); !problem.Is(err, problem.UnsupportedRouting) || !strings.Contains(err.Error(), "routes a Knative Service") {
		t.Errorf("Reconcile of a Deployment target: error = %v, want a ConfigError", err)
	}
	if n := writes(); n != 0 {
		t.Errorf("refused calls wrote %d times", n)
	}
}
