package router_test

import (
	"bytes"
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// splitProvider describes a router that splits traffic by weight, for the
// tests the routers share.
type splitProvider struct {
	// name is the provider's name, for New; dir holds its golden files
	// under testdata.
	name, dir string
	// spec sets the Service fields the provider uses.
	spec func(*flaggerv1beta1.CanarySpec)
	// setup, when set, creates the user's objects the provider reads in
	// the test's namespace.
	setup func(t *testing.T, ns string)
	// mirrors is true when the provider can mirror traffic.
	mirrors bool
	// abTesting makes an analysis an A/B test the provider can route, or
	// is nil when the provider cannot route A/B tests.
	abTesting func(*flaggerv1beta1.CanaryAnalysis)
	// object returns the routing object named after the apex, empty.
	object func(ns string) client.Object
	// specOf returns the YAML of an object's spec, as in the golden files.
	specOf func(t *testing.T, obj client.Object) []byte
	// render renders the spec for a split without an API server.
	render func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error)
	// edit is a user's merge patch that sets the split to 50/50 and
	// changes another field of the spec; editIn, when set, returns it for
	// the test's namespace instead.
	edit   string
	editIn func(ns string) string
}

var istioProvider = splitProvider{
	name: flaggerv1beta1.ProviderIstio,
	dir:  "istio",
	spec: func(s *flaggerv1beta1.CanarySpec) {
		s.Service.Hosts = []string{"podinfo.example.com"}
		s.Service.Gateways = []string{"istio-system/public-gateway", "mesh"}
		s.Service.Match = []flaggerv1beta1.HTTPMatchRequest{{URI: &flaggerv1beta1.StringMatch{Prefix: ptr.To("/api")}}}
		s.Service.Rewrite = &flaggerv1beta1.HTTPRewrite{URI: "/"}
		s.Service.Timeout = "30s"
		s.Service.Retries = &flaggerv1beta1.HTTPRetry{Attempts: 3, PerTryTimeout: "1m", RetryOn: "gateway-error,connect-failure"}
		s.Service.Headers = serviceHeaders()
		s.Service.CorsPolicy = &flaggerv1beta1.CorsPolicy{
			AllowOrigins: []flaggerv1beta1.StringMatch{{Exact: ptr.To("https://example.com")}},
			AllowMethods: []string{"GET", "POST"}, MaxAge: "24h", AllowCredentials: ptr.To(true),
		}
		s.Service.TrafficPolicy = &flaggerv1beta1.TrafficPolicy{TLS: &flaggerv1beta1.ClientTLSSettings{Mode: "ISTIO_MUTUAL"}}
	},
	object: func(ns string) client.Object {
		return &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, &obj.(*networkingv1.VirtualService).Spec)
	},
	render: func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) {
		return router.RenderVirtualService(cd, r)
	},
	mirrors:   true,
	abTesting: abTesting,
	edit: `{"spec":{"gateways":["someone-elses-gateway"],"http":[{"name":"default","route":[` +
		`{"destination":{"host":"podinfo-primary","port":{"number":9898}},"weight":50},` +
		`{"destination":{"host":"podinfo-canary","port":{"number":9898}},"weight":50}]}]}}`,
}

var gatewayAPIProvider = splitProvider{
	name: flaggerv1beta1.ProviderGatewayAPIV1,
	dir:  "gatewayapi",
	spec: func(s *flaggerv1beta1.CanarySpec) {
		s.Service.Hosts = []string{"podinfo.example.com"}
		s.Service.GatewayRefs = []flaggerv1beta1.ParentReference{
			{Name: "public", Namespace: ptr.To("gateway-system")},
			{Name: "internal", SectionName: ptr.To("http")},
		}
		s.Service.Match = []flaggerv1beta1.HTTPMatchRequest{{URI: &flaggerv1beta1.StringMatch{Prefix: ptr.To("/api")}}}
		s.Service.Rewrite = &flaggerv1beta1.HTTPRewrite{URI: "/", Type: "ReplacePrefixMatch"}
		s.Service.Timeout = "30s"
		s.Service.BackendTimeout = "10s"
		s.Service.Headers = serviceHeaders()
		s.Service.CorsPolicy = &flaggerv1beta1.CorsPolicy{AllowOrigin: []string{"https://example.com"}, AllowMethods: []string{"GET", "POST"}, MaxAge: "24h"}
	},
	setup: func(t *testing.T, ns string) {
		t.Helper()
		createGateway(t, "gateway-system", "public")
		createGateway(t, ns, "internal")
	},
	object: func(ns string) client.Object {
		return &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: ns}}
	},
	specOf: func(t *testing.T, obj client.Object) []byte {
		return specYAML(t, obj.(*gatewayv1.HTTPRoute).Spec)
	},
	render:    func(cd *flaggerv1beta1.Canary, r router.Routes) (any, error) { return router.RenderHTTPRoute(cd, r) },
	mirrors:   true,
	abTesting: abTesting,
	edit: `{"spec":{"hostnames":["elsewhere.example.com"],"rules":[{"backendRefs":[` +
		`{"name":"podinfo-primary","port":9898,"weight":50},{"name":"podinfo-canary","port":9898,"weight":50}]}]}}`,
}

var splitProviders = append([]splitProvider{istioProvider, gatewayAPIProvider, nginxProvider, contourProvider, traefikProvider,
	glooProvider, apisixProvider, skipperProvider, appMeshProvider, appMeshV1beta2Provider}, smiProviders...)

// serviceHeaders are header operations of the tests' Canaries.
func serviceHeaders() *flaggerv1beta1.Headers {
	return &flaggerv1beta1.Headers{
		Request:  &flaggerv1beta1.HeaderOperations{Set: map[string]string{"x-sluice": "true", "x-env": "prod"}},
		Response: &flaggerv1beta1.HeaderOperations{Remove: []string{"x-envoy-upstream-service-time"}},
	}
}

// mirroring makes the analysis a blue/green one with mirrored traffic.
func mirroring(a *flaggerv1beta1.CanaryAnalysis) {
	a.Iterations, a.Mirror, a.MirrorWeight = ptr.To[int32](10), true, 50
}

// abTesting makes the analysis an A/B test on a header, or on a cookie
// and a query parameter.
func abTesting(a *flaggerv1beta1.CanaryAnalysis) {
	a.Iterations = ptr.To[int32](10)
	a.Match = []flaggerv1beta1.HTTPMatchConditions{
		{Headers: map[string]flaggerv1beta1.HeaderMatch{"x-canary": {Exact: ptr.To("insider")}}},
		{
			Headers:     map[string]flaggerv1beta1.HeaderMatch{"cookie": {Regex: ptr.To("^(.*?;)?(canary=always)(;.*)?$")}},
			QueryParams: map[string]flaggerv1beta1.StringMatch{"beta": {Exact: ptr.To("on")}},
		},
	}
}

// newSplitCanary creates a Canary with the provider's Service fields and
// a canary-release analysis, and returns it with the provider's router.
func newSplitCanary(t *testing.T, p splitProvider) (*flaggerv1beta1.Canary, router.Interface, func() int32) {
	t.Helper()
	ns := newNamespace(t)
	cd := newCanary(t, ns, func(s *flaggerv1beta1.CanarySpec) {
		s.Analysis.Iterations = nil
		s.Analysis.StepWeight, s.Analysis.MaxWeight = ptr.To[int32](10), ptr.To[int32](50)
		p.spec(s)
	})
	if p.setup != nil {
		p.setup(t, ns)
	}
	c, writes := countingClient(t)
	r, err := router.New(p.name, router.Deps{Client: c})
	if err != nil {
		t.Fatal(err)
	}
	return cd, r, func() int32 { return writes.Swap(0) }
}

// liveSpec reads the provider's routing object and returns its spec as YAML.
func liveSpec(t *testing.T, p splitProvider, ns string) []byte {
	t.Helper()
	obj := p.object(ns)
	if err := env.Client.Get(t.Context(), objectKey(obj), obj); err != nil {
		t.Fatalf("reading %T %s: %v", obj, obj.GetName(), err)
	}
	return withoutNamespace(p.specOf(t, obj), ns)
}

// withoutNamespace replaces the test's namespace (a generated name) in a
// spec with <namespace>, so that golden files do not depend on it.
func withoutNamespace(spec []byte, ns string) []byte {
	return bytes.ReplaceAll(spec, []byte(ns), []byte("<namespace>"))
}

// renderedSpec renders the provider's spec for a split as YAML.
func renderedSpec(t *testing.T, p splitProvider, cd *flaggerv1beta1.Canary, r router.Routes) []byte {
	t.Helper()
	spec, err := p.render(cd, r)
	if err != nil {
		t.Fatalf("rendering %+v: %v", r, err)
	}
	return withoutNamespace(specYAML(t, spec), cd.Namespace)
}

func TestSplitRouters_WriteEachStepAsInGoldenFile(t *testing.T) {
	t.Parallel()
	steps := []struct {
		name       string
		mirror, ab bool // the step needs mirroring or A/B routing; else a canary release
		routes     router.Routes
		golden     string
	}{
		{name: "starts on the primary", routes: router.Routes{Primary: 100}, golden: "primary-100-0"},
		{name: "shifts 10% to the canary", routes: router.Routes{Primary: 90, Canary: 10}, golden: "canary-90-10"},
		{name: "shifts 20% to the canary", routes: router.Routes{Primary: 80, Canary: 20}, golden: "canary-80-20"},
		{name: "mirrors to the canary", mirror: true, routes: router.Routes{Primary: 100, Mirrored: true}, golden: "mirrored-100-0"},
		{name: "sends A/B matches to the canary", ab: true, routes: router.Routes{Canary: 100}, golden: "ab-testing-0-100"},
		{name: "returns to the primary", routes: router.Routes{Primary: 100}, golden: "primary-100-0"},
	}
	for _, p := range splitProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			ctx := testContext(t)
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatalf("Reconcile: %v", err)
			}
			assertOwnedBy(t, cd, p.object(cd.Namespace))
			for _, step := range steps {
				if step.mirror && !p.mirrors || step.ab && p.abTesting == nil {
					continue // TestSplitRouters_RefuseWhatTheProviderCannotRoute
				}
				stepCanary := cd.DeepCopy()
				switch {
				case step.mirror:
					mirroring(stepCanary.Spec.Analysis)
				case step.ab:
					p.abTesting(stepCanary.Spec.Analysis)
				}
				writes()
				if err := r.SetRoutes(ctx, stepCanary, podinfo, step.routes); err != nil {
					t.Fatalf("%s: SetRoutes: %v", step.name, err)
				}
				if n := writes(); n > 1 {
					t.Errorf("%s: SetRoutes wrote %d times, want at most once", step.name, n)
				}
				golden := p.dir + "/" + step.golden + ".golden"
				assertGolden(t, golden, liveSpec(t, p, cd.Namespace))
				assertGolden(t, golden, renderedSpec(t, p, stepCanary, step.routes))
				if got, err := r.GetRoutes(ctx, stepCanary, podinfo); err != nil || got != step.routes {
					t.Errorf("%s: GetRoutes = %+v, %v; want %+v", step.name, got, err, step.routes)
				}
				if err := r.SetRoutes(ctx, stepCanary, podinfo, step.routes); err != nil {
					t.Fatalf("%s: SetRoutes again: %v", step.name, err)
				}
				if n := writes(); n != 0 {
					t.Errorf("%s: repeating SetRoutes wrote %d times, want none", step.name, n)
				}
			}
		})
	}
}

func TestSplitRouters_RevertUserEditsButReportThemFirst(t *testing.T) {
	t.Parallel()
	for _, p := range splitProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, _ := newSplitCanary(t, p)
			ctx := testContext(t)
			split := router.Routes{Primary: 90, Canary: 10}
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatal(err)
			}
			if err := r.SetRoutes(ctx, cd, podinfo, split); err != nil {
				t.Fatal(err)
			}
			edit := p.edit
			if p.editIn != nil {
				edit = p.editIn(cd.Namespace)
			}
			patchAs(t, p.object(cd.Namespace), edit)

			edited := router.Routes{Primary: 50, Canary: 50}
			if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != edited {
				t.Errorf("GetRoutes after the edit = %+v, %v; want the edited %+v", got, err, edited)
			}
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatal(err)
			}
			if got, want := string(liveSpec(t, p, cd.Namespace)), string(renderedSpec(t, p, cd, edited)); got != want {
				t.Errorf("Reconcile should restore the spec and keep the edited split; got\n%s\nwant\n%s", got, want)
			}
			if err := r.SetRoutes(ctx, cd, podinfo, split); err != nil {
				t.Fatal(err)
			}
			assertGolden(t, p.dir+"/canary-90-10.golden", liveSpec(t, p, cd.Namespace))
			if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != split {
				t.Errorf("GetRoutes after SetRoutes = %+v, %v; want %+v", got, err, split)
			}
		})
	}
}

func TestSplitRouters_RejectSplitsThatDoNotAddUpTo100(t *testing.T) {
	t.Parallel()
	for _, p := range splitProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			for _, routes := range []router.Routes{{Primary: 50, Canary: 40}, {Primary: 110, Canary: -10}, {}} {
				err := r.SetRoutes(testContext(t), cd, podinfo, routes)
				if err == nil || !strings.Contains(err.Error(), "add up to 100") {
					t.Errorf("SetRoutes(%+v) error = %v, want one about adding up to 100", routes, err)
				}
			}
			if n := writes(); n != 0 {
				t.Errorf("refused splits wrote %d times", n)
			}
		})
	}
}

func TestSplitRouters_RefuseWhatTheProviderCannotRoute(t *testing.T) {
	t.Parallel()
	for _, p := range splitProviders {
		if p.mirrors && p.abTesting != nil {
			continue
		}
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			ctx := testContext(t)
			if !p.mirrors {
				mirrored := cd.DeepCopy()
				mirroring(mirrored.Spec.Analysis)
				err := r.SetRoutes(ctx, mirrored, podinfo, router.Routes{Primary: 100, Mirrored: true})
				if err == nil || !strings.Contains(err.Error(), "cannot mirror traffic") {
					t.Errorf("mirrored SetRoutes error = %v, want one saying the provider cannot mirror", err)
				}
			}
			ab := cd.DeepCopy()
			abTesting(ab.Spec.Analysis)
			if p.abTesting == nil {
				err := r.SetRoutes(ctx, ab, podinfo, router.Routes{Canary: 100})
				if err == nil || !strings.Contains(err.Error(), "cannot route A/B tests") {
					t.Errorf("A/B SetRoutes error = %v, want one saying the provider cannot route A/B tests", err)
				}
			}
			if n := writes(); n != 0 {
				t.Errorf("refused routes wrote %d times", n)
			}
			if p.abTesting == nil {
				// The engine must still be able to end an A/B test on the primary.
				if err := r.SetRoutes(ctx, ab, podinfo, router.Routes{Primary: 100}); err != nil {
					t.Errorf("A/B SetRoutes to the primary: %v", err)
				}
			}
		})
	}
}

func TestSplitRouters_GetRoutesFailsWithoutRoutingObject(t *testing.T) {
	t.Parallel()
	for _, p := range splitProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, _ := newSplitCanary(t, p)
			if _, err := r.GetRoutes(testContext(t), cd, podinfo); err == nil || !strings.Contains(err.Error(), "not found") {
				t.Errorf("GetRoutes error = %v, want not found", err)
			}
		})
	}
}

func TestSplitRouters_FinalizeLeavesOwnedObjectsToGarbageCollection(t *testing.T) {
	t.Parallel()
	for _, p := range splitProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, writes := newSplitCanary(t, p)
			ctx := testContext(t)
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatal(err)
			}
			writes()
			if err := r.Finalize(ctx, cd, podinfo); err != nil {
				t.Fatalf("Finalize: %v", err)
			}
			if n := writes(); n != 0 {
				t.Errorf("Finalize wrote %d times", n)
			}
			assertOwnedBy(t, cd, p.object(cd.Namespace))
		})
	}
}

// assertOwnedBy reads obj and checks that the Canary is its controller.
func assertOwnedBy(t *testing.T, cd *flaggerv1beta1.Canary, obj client.Object) {
	t.Helper()
	if err := env.Client.Get(t.Context(), objectKey(obj), obj); err != nil {
		t.Fatalf("reading %T %s: %v", obj, obj.GetName(), err)
	}
	ref := metav1.GetControllerOf(obj)
	if ref == nil || ref.UID != cd.UID || ref.Kind != "Canary" || !ptr.Deref(ref.BlockOwnerDeletion, false) {
		t.Errorf("%T %s has controller %+v, want Canary %s", obj, obj.GetName(), ref, cd.Name)
	}
}

// TestSplitRouters_AdoptWhatAnotherControllerCreatedInPlace: a routing
// object that Flagger created for the same Canary (controller reference to
// the Canary, Flagger's labels and annotations, none of Sluice's) is taken
// over in place, for every provider: same UID, patched, never recreated.
func TestSplitRouters_AdoptWhatAnotherControllerCreatedInPlace(t *testing.T) {
	t.Parallel()
	for _, p := range splitProviders {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			cd, r, _ := newSplitCanary(t, p)
			ctx := testContext(t)
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatal(err)
			}
			// Make it look like Flagger's: its labels and annotations, a
			// 90/10 split, none of Sluice's metadata.
			obj := p.object(cd.Namespace)
			if err := env.Client.Get(ctx, objectKey(obj), obj); err != nil {
				t.Fatal(err)
			}
			uid := obj.GetUID()
			before := obj.DeepCopyObject().(client.Object)
			obj.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "flagger"})
			obj.SetAnnotations(map[string]string{"flagger.kubernetes.io/original-configuration": "{}"})
			if err := env.Client.Patch(ctx, obj, client.MergeFrom(before)); err != nil {
				t.Fatal(err)
			}
			if err := r.Reconcile(ctx, cd, podinfo); err != nil {
				t.Fatalf("Reconcile of an adopted object: %v", err)
			}
			if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 80, Canary: 20}); err != nil {
				t.Fatalf("SetRoutes on an adopted object: %v", err)
			}
			after := p.object(cd.Namespace)
			if err := env.Client.Get(ctx, objectKey(after), after); err != nil {
				t.Fatal(err)
			}
			if after.GetUID() != uid {
				t.Fatalf("the object was recreated: uid %s, was %s", after.GetUID(), uid)
			}
			if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Primary: 80, Canary: 20}) {
				t.Errorf("GetRoutes after adoption = %+v, %v; want 80/20", got, err)
			}
			if after.GetLabels()["app.kubernetes.io/managed-by"] != "flagger" {
				t.Errorf("Flagger's label was dropped: %v", after.GetLabels())
			}
		})
	}
}
