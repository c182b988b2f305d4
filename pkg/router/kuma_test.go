package router_test

import (
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	kumav1alpha1 "github.com/sluicedev/sluice/pkg/apis/kuma/v1alpha1"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

// newKumaCanary creates a canary-release Canary whose apex Service is
// named after its namespace, since TrafficRoutes are cluster-scoped and
// the tests run in parallel, and returns it with the kuma router.
func newKumaCanary(t *testing.T) (*flaggerv1beta1.Canary, router.Interface, func() int32) {
	t.Helper()
	ns := newNamespace(t)
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.Service.Name = ns
		s.Analysis.Iterations = nil
		s.Analysis.StepWeight, s.Analysis.MaxWeight = ptr.To[int32](10), ptr.To[int32](50)
	})
	c, writes := countingClient(t)
	r, err := router.New(flaggerv1beta1.ProviderKuma, router.Deps{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = env.Client.Delete(t.Context(), &kumav1alpha1.TrafficRoute{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	})
	return cd, r, func() int32 { return writes.Swap(0) }
}

// trafficRoute reads the TrafficRoute of a Kuma Canary.
func trafficRoute(t *testing.T, cd *flaggerv1beta1.Canary) *kumav1alpha1.TrafficRoute {
	t.Helper()
	tr := &kumav1alpha1.TrafficRoute{}
	if err := env.Client.Get(t.Context(), client.ObjectKey{Name: cd.Spec.Service.Name}, tr); err != nil {
		t.Fatalf("reading TrafficRoute %s: %v", cd.Spec.Service.Name, err)
	}
	return tr
}

// kumaSpec returns the YAML of a TrafficRoute's mesh and spec, without
// the test's namespace.
func kumaSpec(t *testing.T, cd *flaggerv1beta1.Canary, tr *kumav1alpha1.TrafficRoute) []byte {
	t.Helper()
	return withoutNamespace(specYAML(t, struct {
		Mesh string                        `json:"mesh"`
		Spec kumav1alpha1.TrafficRouteSpec `json:"spec"`
	}{tr.Mesh, tr.Spec}), cd.Namespace)
}

func TestKumaRouter_WritesEachStepAsInGoldenFile(t *testing.T) {
	t.Parallel()
	cd, r, writes := newKumaCanary(t)
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	tr := trafficRoute(t, cd)
	if tr.Annotations[router.OwnerAnnotation] != cd.Namespace+"/podinfo" || len(tr.OwnerReferences) != 0 {
		t.Errorf("TrafficRoute owner annotation %q, owner references %v; want the Canary in the annotation only",
			tr.Annotations[router.OwnerAnnotation], tr.OwnerReferences)
	}
	for _, step := range []struct {
		routes router.Routes
		golden string
	}{
		{router.Routes{Primary: 100}, "primary-100-0"},
		{router.Routes{Primary: 90, Canary: 10}, "canary-90-10"},
		{router.Routes{Primary: 80, Canary: 20}, "canary-80-20"},
		{router.Routes{Primary: 100}, "primary-100-0"},
	} {
		writes()
		if err := r.SetRoutes(ctx, cd, podinfo, step.routes); err != nil {
			t.Fatalf("SetRoutes(%+v): %v", step.routes, err)
		}
		if n := writes(); n > 1 {
			t.Errorf("SetRoutes(%+v) wrote %d times, want at most once", step.routes, n)
		}
		assertGolden(t, "kuma/"+step.golden+".golden", kumaSpec(t, cd, trafficRoute(t, cd)))
		rendered, err := router.RenderTrafficRoute(cd, step.routes)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := string(kumaSpec(t, cd, &kumav1alpha1.TrafficRoute{Mesh: "default", Spec: *rendered})), string(kumaSpec(t, cd, trafficRoute(t, cd))); got != want {
			t.Errorf("rendered %s differs from the live one %s", got, want)
		}
		if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != step.routes {
			t.Errorf("GetRoutes = %+v, %v; want %+v", got, err, step.routes)
		}
		if err := r.SetRoutes(ctx, cd, podinfo, step.routes); err != nil {
			t.Fatal(err)
		}
		if n := writes(); n != 0 {
			t.Errorf("repeating SetRoutes(%+v) wrote %d times", step.routes, n)
		}
	}
}

func TestKumaRouter_RevertsUserEditsButReportsThemFirst(t *testing.T) {
	t.Parallel()
	cd, r, _ := newKumaCanary(t)
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 90, Canary: 10}); err != nil {
		t.Fatal(err)
	}
	ns := cd.Namespace
	patchAs(t, &kumav1alpha1.TrafficRoute{ObjectMeta: metav1.ObjectMeta{Name: ns}}, `{"mesh":"other","spec":{"conf":{"split":[`+
		`{"weight":50,"destination":{"kuma.io/service":"`+ns+`-primary_`+ns+`_svc_9898"}},`+
		`{"weight":50,"destination":{"kuma.io/service":"`+ns+`-canary_`+ns+`_svc_9898"}}]}}}`)
	if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Primary: 50, Canary: 50}) {
		t.Errorf("GetRoutes after the edit = %+v, %v; want the edited 50/50", got, err)
	}
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	tr := trafficRoute(t, cd)
	if tr.Mesh != "default" || tr.Spec.Conf.Split[0].Weight != 50 {
		t.Errorf("after Reconcile mesh %q and weights %+v; want mesh default restored and the edited split kept", tr.Mesh, tr.Spec.Conf.Split)
	}
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 90, Canary: 10}); err != nil {
		t.Fatal(err)
	}
	assertGolden(t, "kuma/canary-90-10.golden", kumaSpec(t, cd, trafficRoute(t, cd)))
}

func TestKumaRouter_RefusesAnotherCanarysRouteAndWhatKumaCannotRoute(t *testing.T) {
	t.Parallel()
	cd, r, writes := newKumaCanary(t)
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	other := cd.DeepCopy()
	other.Namespace = "elsewhere"
	writes()
	if err := r.Reconcile(ctx, other, podinfo); !problem.Is(err, problem.NotOwned) || !strings.Contains(err.Error(), "Canary "+cd.Namespace+"/podinfo") {
		t.Errorf("Reconcile of a Canary in another namespace with the same apex name: error = %v, want NotOwned naming %s/podinfo", err, cd.Namespace)
	}
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
	if n := writes(); n != 0 {
		t.Errorf("refused calls wrote %d times", n)
	}
}

func TestKumaRouter_FinalizeDeletesItsRouteOnly(t *testing.T) {
	t.Parallel()
	cd, r, _ := newKumaCanary(t)
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	other := cd.DeepCopy()
	other.Namespace = "elsewhere"
	if err := r.Finalize(ctx, other, podinfo); err != nil {
		t.Fatal(err)
	}
	trafficRoute(t, cd) // another Canary's Finalize leaves it
	if err := r.Finalize(ctx, cd, podinfo); err != nil {
		t.Fatalf("Finalize: %v", err)
	}
	err := env.Client.Get(t.Context(), client.ObjectKey{Name: cd.Spec.Service.Name}, &kumav1alpha1.TrafficRoute{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after Finalize reading the TrafficRoute: %v, want not found", err)
	}
	if err := r.Finalize(ctx, cd, podinfo); err != nil {
		t.Errorf("Finalize again: %v", err)
	}
	if _, err := r.GetRoutes(ctx, cd, podinfo); !apierrors.IsNotFound(err) {
		t.Errorf("GetRoutes without a TrafficRoute: %v, want not found", err)
	}
}

func TestKumaRouter_UsesTheMeshOfTheCanarysAnnotation(t *testing.T) {
	t.Parallel()
	cd, r, _ := newKumaCanary(t)
	cd.Annotations = map[string]string{"kuma.io/mesh": "payments"}
	if err := r.Reconcile(testContext(t), cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if tr := trafficRoute(t, cd); tr.Mesh != "payments" {
		t.Errorf("mesh = %q, want payments", tr.Mesh)
	}
}
