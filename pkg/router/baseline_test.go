package router_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// baselineProviders are the routers that route to a baseline.
var baselineProviders = []splitProvider{istioProvider, gatewayAPIProvider}

func TestSupportsBaseline_OnlyIstioAndGatewayAPI(t *testing.T) {
	t.Parallel()
	for _, name := range flaggerProviders {
		r, err := router.New(name, router.Deps{})
		if err != nil {
			t.Fatal(err)
		}
		want := name == flaggerv1beta1.ProviderIstio || strings.HasPrefix(name, "gatewayapi:")
		if got := router.SupportsBaseline(r); got != want {
			t.Errorf("SupportsBaseline(%s) = %t, want %t", name, got, want)
		}
	}
}

// TestBaselineRouters_WriteEachStepAsInGoldenFile walks a release with a
// baseline: the baseline gets the canary's share out of the primary's,
// then none while the promoted primary takes the canary's traffic back.
func TestBaselineRouters_WriteEachStepAsInGoldenFile(t *testing.T) {
	t.Parallel()
	steps := []struct {
		name   string
		routes router.Routes
		golden string
	}{
		{name: "starts on the primary", routes: router.Routes{Primary: 100}, golden: "primary-100-0"},
		{name: "shifts 10% to the canary and 10% to the baseline", routes: router.Routes{Primary: 80, Canary: 10, Baseline: 10}, golden: "baseline-80-10-10"},
		{name: "shifts 20% to the canary and 20% to the baseline", routes: router.Routes{Primary: 60, Canary: 20, Baseline: 20}, golden: "baseline-60-20-20"},
		{name: "gives the baseline's share back to the primary at promotion", routes: router.Routes{Primary: 80, Canary: 20}, golden: "canary-80-20"},
		{name: "returns to the primary", routes: router.Routes{Primary: 100}, golden: "primary-100-0"},
	}
	for _, p := range baselineProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			cd.Spec.Analysis.Baseline = true
			ctx := testContext(t)
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			for _, step := range steps {
				writes()
				if err := r.SetRoutes(ctx, cd, podinfo, step.routes); err != nil {
					t.Fatalf("%s: SetRoutes: %v", step.name, err)
				}
				if n := writes(); n > 1 {
					t.Errorf("%s: SetRoutes wrote %d times, want at most once", step.name, n)
				}
				golden := p.dir + "/" + step.golden + ".golden"
				assertGolden(t, golden, liveSpec(t, p, cd.Namespace))
				assertGolden(t, golden, renderedSpec(t, p, cd, step.routes))
				if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != step.routes {
					t.Errorf("%s: GetRoutes = %+v, %v; want %+v", step.name, got, err, step.routes)
				}
				// Reconcile keeps the split, baseline included.
				if err := r.Reconcile(ctx, cd, podinfo); err != nil {
					t.Fatalf("%s: Reconcile: %v", step.name, err)
				}
				if n := writes(); n != 0 {
					t.Errorf("%s: Reconcile after SetRoutes wrote %d times, want none", step.name, n)
				}
			}
		})
	}
}

func TestBaselineRouters_RefuseASplitThatDoesNotAddUp(t *testing.T) {
	t.Parallel()
	for _, p := range baselineProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			cd.Spec.Analysis.Baseline = true
			ctx := testContext(t)
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatal(err)
			}
			writes()
			err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 70, Canary: 20, Baseline: 20})
			if err == nil || !strings.Contains(err.Error(), "the primary, canary and baseline weights must be between 0 and 100 and add up to 100, not 70, 20 and 20") {
				t.Errorf("SetRoutes 70/20/20 = %v, want a refusal", err)
			}
			if n := writes(); n != 0 {
				t.Errorf("a refused split wrote %d times", n)
			}
		})
	}
}

// TestSplitRouters_RefuseABaselineShare: a router that cannot route to a
// baseline refuses a split that gives it traffic, instead of dropping it.
func TestSplitRouters_RefuseABaselineShare(t *testing.T) {
	t.Parallel()
	for _, p := range splitProviders {
		if slices.ContainsFunc(baselineProviders, func(b splitProvider) bool { return b.name == p.name }) {
			continue
		}
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			ctx := testContext(t)
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatal(err)
			}
			writes()
			err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 80, Canary: 10, Baseline: 10})
			if err == nil || !strings.Contains(err.Error(), "this provider cannot send traffic to a baseline (analysis.baseline), and the split gives it 10%") {
				t.Errorf("SetRoutes with a baseline share = %v, want a refusal", err)
			}
			if n := writes(); n != 0 {
				t.Errorf("a refused split wrote %d times", n)
			}
		})
	}
}

// TestIstioRouter_OwnsABaselineDestinationRuleOnlyWithABaseline: the
// DestinationRule <apex>-baseline, with the Service's traffic policy, is
// there while the Canary asks for a baseline and goes when it stops.
func TestIstioRouter_OwnsABaselineDestinationRuleOnlyWithABaseline(t *testing.T) {
	t.Parallel()
	cd, r, writes := newSplitCanary(t, istioProvider)
	ctx := testContext(t)
	dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-baseline", Namespace: cd.Namespace}}
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, objectKey(dr), dr); !apierrors.IsNotFound(err) {
		t.Fatalf("a baseline DestinationRule without a baseline: %v", err)
	}
	writes()

	cd.Spec.Analysis.Baseline = true
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if n := writes(); n != 1 {
		t.Errorf("Reconcile with a baseline wrote %d times, want one creation", n)
	}
	assertOwnedBy(t, cd, dr)
	assertGolden(t, "istio/destinationrule-baseline.golden", specYAML(t, &dr.Spec))

	cd.Spec.Analysis.Baseline = false
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, objectKey(dr), dr); !apierrors.IsNotFound(err) {
		t.Errorf("the baseline DestinationRule is still there without a baseline: %v", err)
	}
}

func TestRenderVirtualService_TCPWithABaseline(t *testing.T) {
	t.Parallel()
	cd := &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
		Spec: flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"},
			Service: flaggerv1beta1.CanaryService{Name: "db", Port: 5432, AppProtocol: "tcp"}},
	}
	spec, err := router.RenderVirtualService(cd, router.Routes{Primary: 60, Canary: 20, Baseline: 20})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range spec.Tcp[0].Route {
		got = append(got, fmt.Sprintf("%s=%d", d.GetDestination().GetHost(), d.Weight))
	}
	if want := []string{"db-primary=60", "db-canary=20", "db-baseline=20"}; !slices.Equal(got, want) {
		t.Errorf("TCP destinations %v, want %v", got, want)
	}
}

func TestBaselineService_SelectsTheBaselineWhileItRuns(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.Service.Primary = &flaggerv1beta1.CustomMetadata{Labels: map[string]string{"role": "stable"}}
	})
	ctx := testContext(t)
	c, writes := countingClient(t)
	if err := router.EnsureBaselineService(ctx, c, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	svc := getService(t, ns, "podinfo-baseline")
	assertOwnedBy(t, cd, svc)
	if svc.Spec.Selector["app"] != "podinfo-baseline" || len(svc.Spec.Selector) != 1 || svc.Labels["role"] != "stable" ||
		svc.Labels["app"] != "podinfo-baseline" || svc.Spec.Ports[0].Port != 9898 {
		t.Errorf("baseline Service: selector %v, labels %v, ports %v", svc.Spec.Selector, svc.Labels, svc.Spec.Ports)
	}
	writes.Store(0)
	if err := router.EnsureBaselineService(ctx, c, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("EnsureBaselineService on an unchanged Service wrote %d times", n)
	}
	if err := router.RemoveBaselineService(ctx, c, cd); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: "podinfo-baseline"}, &corev1.Service{}); !apierrors.IsNotFound(err) {
		t.Errorf("the baseline Service is still there: %v", err)
	}

	// Someone else's Service of the name is neither edited nor deleted.
	theirs := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-baseline", Namespace: ns},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "theirs"}, Ports: []corev1.ServicePort{{Port: 80}}}}
	if err := env.Client.Create(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	if err := router.EnsureBaselineService(ctx, c, cd, podinfo); err == nil || !strings.Contains(err.Error(), "not by Canary") {
		t.Errorf("EnsureBaselineService over someone else's Service = %v, want a NotOwned problem", err)
	}
	writes.Store(0)
	if err := router.RemoveBaselineService(ctx, c, cd); err != nil || writes.Load() != 0 {
		t.Errorf("RemoveBaselineService of someone else's Service = %v after %d writes, want nothing done", err, writes.Load())
	}
	if got := getService(t, ns, "podinfo-baseline"); got.UID != theirs.UID || got.Spec.Selector["app"] != "theirs" {
		t.Errorf("someone else's Service was changed: %v", got.Spec.Selector)
	}
}
