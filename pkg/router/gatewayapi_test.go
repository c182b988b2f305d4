package router_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

func TestGatewayAPIRouter_RequiresGatewayRefs(t *testing.T) {
	t.Parallel()
	cd, r, writes := newSplitCanary(t, gatewayAPIProvider)
	cd.Spec.Service.GatewayRefs = nil
	ctx := testContext(t)
	const want = "gatewayapi needs spec.service.gatewayRefs"
	if err := r.Reconcile(ctx, cd, podinfo); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Reconcile error = %v, want one containing %q", err, want)
	}
	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 100}); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("SetRoutes error = %v, want one containing %q", err, want)
	}
	if n := writes(); n != 0 {
		t.Errorf("wrote %d times without a parent Gateway", n)
	}
}

func TestGatewayAPIRouter_ReportsAMissingParentGateway(t *testing.T) {
	t.Parallel()
	cd, r, writes := newSplitCanary(t, gatewayAPIProvider)
	cd.Spec.Service.GatewayRefs = append(cd.Spec.Service.GatewayRefs,
		flaggerv1beta1.ParentReference{Name: "podinfo", Kind: ptr.To("Service"), Group: ptr.To("")}, // a mesh parent: not a Gateway
		flaggerv1beta1.ParentReference{Name: "gone", Namespace: ptr.To("gateway-system")})
	err := r.Reconcile(testContext(t), cd, podinfo)
	const want = "spec.service.gatewayRefs[3]: the Gateway gateway-system/gone does not exist"
	if err == nil || !strings.Contains(err.Error(), want) || !problem.Is(err, problem.UnsupportedRouting) {
		t.Errorf("Reconcile error = %v, want a ConfigError containing %q", err, want)
	}
	if n := writes(); n != 0 {
		t.Errorf("wrote %d times with a missing parent Gateway", n)
	}
}

// createGateway creates a Gateway, and its namespace when missing; an
// existing Gateway of that name is fine (tests share gateway-system).
func createGateway(t *testing.T, ns, name string) {
	t.Helper()
	if err := env.Client.Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	gw := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: gatewayv1.GatewaySpec{GatewayClassName: "example", Listeners: []gatewayv1.Listener{
			{Name: "http", Port: 80, Protocol: gatewayv1.HTTPProtocolType},
		}},
	}
	if err := env.Client.Create(t.Context(), gw); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating Gateway %s/%s: %v", ns, name, err)
	}
}

func TestGatewayAPIRouter_RejectsConditionsGatewayAPICannotExpress(t *testing.T) {
	t.Parallel()
	cd, r, writes := newSplitCanary(t, gatewayAPIProvider)
	ctx := testContext(t)
	for _, tc := range []struct {
		name     string
		edit     func(*flaggerv1beta1.CanarySpec)
		wantErrs []string
	}{
		{
			name: "prefix header and source labels in A/B test",
			edit: func(s *flaggerv1beta1.CanarySpec) {
				abTesting(s.Analysis)
				s.Analysis.Match[0].Headers["x-canary"] = flaggerv1beta1.HeaderMatch{Prefix: ptr.To("in")}
				s.Analysis.Match[1].SourceLabels = map[string]string{"app": "frontend"}
			},
			wantErrs: []string{
				"spec.analysis.match[0].headers.x-canary: gateway API matches headers and query parameters exactly or by regex only",
				"spec.analysis.match[1].sourceLabels: gateway API has no such request condition",
			},
		},
		{
			name: "suffix path, method prefix and authority",
			edit: func(s *flaggerv1beta1.CanarySpec) {
				s.Service.Match[0].URI = &flaggerv1beta1.StringMatch{Suffix: ptr.To(".json")}
				s.Service.Match[0].Method = &flaggerv1beta1.StringMatch{Prefix: ptr.To("P")}
				s.Service.Match[0].Authority = &flaggerv1beta1.StringMatch{Exact: ptr.To("example.com")}
			},
			wantErrs: []string{
				"spec.service.match[0].uri: gateway API has no suffix path match",
				"spec.service.match[0].method: gateway API matches methods exactly only",
				"spec.service.match[0].authority: gateway API has no such request condition",
			},
		},
		{
			// 1200000h is 4.32e9 seconds, which int32 would wrap to a
			// plausible 25032704.
			name: "CORS maxAge beyond int32 seconds",
			edit: func(s *flaggerv1beta1.CanarySpec) {
				s.Service.CorsPolicy = &flaggerv1beta1.CorsPolicy{AllowOrigin: []string{"https://example.com"}, MaxAge: "1200000h"}
			},
			wantErrs: []string{`spec.service.corsPolicy.maxAge: "1200000h" is out of range: gateway API takes 0s to 2147483647 seconds`},
		},
		{
			name:     "negative CORS maxAge",
			edit:     func(s *flaggerv1beta1.CanarySpec) { s.Service.CorsPolicy = &flaggerv1beta1.CorsPolicy{MaxAge: "-5s"} },
			wantErrs: []string{`spec.service.corsPolicy.maxAge: "-5s" is out of range`},
		},
		{
			name:     "unknown rewrite type",
			edit:     func(s *flaggerv1beta1.CanarySpec) { s.Service.Rewrite.Type = "ReplaceEverything" },
			wantErrs: []string{`spec.service.rewrite.type: "ReplaceEverything" is neither ReplaceFullPath nor ReplacePrefixMatch`},
		},
	} {
		bad := cd.DeepCopy()
		tc.edit(&bad.Spec)
		err := r.SetRoutes(ctx, bad, podinfo, router.Routes{Primary: 100})
		if err == nil {
			t.Errorf("%s: SetRoutes succeeded", tc.name)
			continue
		}
		for _, want := range append(tc.wantErrs, "rendering HTTPRoute "+cd.Namespace+"/podinfo") {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, want)
			}
		}
	}
	if n := writes(); n != 0 {
		t.Errorf("refused input wrote %d times", n)
	}
}

func TestGatewayAPIRouter_KeepsStatusAndAnnotationsOfOtherControllers(t *testing.T) {
	t.Parallel()
	cd, r, _ := newSplitCanary(t, gatewayAPIProvider)
	cd.Spec.Service.Apex = &flaggerv1beta1.CustomMetadata{Labels: map[string]string{"team": "web"}, Annotations: map[string]string{"owner": "web"}}
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: cd.Namespace}}
	patchAs(t, route, `{"metadata":{"annotations":{"gateway.example.com/programmed":"yes"}}}`)
	route.Status.Parents = []gatewayv1.RouteParentStatus{{
		ParentRef:      gatewayv1.ParentReference{Name: "public", Namespace: ptr.To(gatewayv1.Namespace("gateway-system"))},
		ControllerName: "example.com/gateway-controller",
		Conditions: []metav1.Condition{{
			Type: "Accepted", Status: metav1.ConditionTrue, Reason: "Accepted", LastTransitionTime: metav1.Now(),
		}},
	}}
	if err := env.Client.Status().Update(ctx, route); err != nil {
		t.Fatalf("writing the HTTPRoute's status: %v", err)
	}

	if err := r.SetRoutes(ctx, cd, podinfo, router.Routes{Primary: 80, Canary: 20}); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, objectKey(route), route); err != nil {
		t.Fatal(err)
	}
	if got := route.Annotations["gateway.example.com/programmed"]; got != "yes" {
		t.Errorf("another controller's annotation = %q, want it kept", got)
	}
	if route.Labels["team"] != "web" || route.Annotations["owner"] != "web" {
		t.Errorf("metadata = %v %v, want spec.service.apex's label and annotation", route.Labels, route.Annotations)
	}
	if len(route.Status.Parents) != 1 || route.Status.Parents[0].ControllerName != "example.com/gateway-controller" {
		t.Errorf("status = %+v, want the gateway controller's parent status kept", route.Status)
	}
	assertGolden(t, "gatewayapi/canary-80-20.golden", specYAML(t, route.Spec))
}

func TestGatewayAPIRouter_V1beta1WritesTheSameRouteInItsVersion(t *testing.T) {
	t.Parallel()
	p := gatewayAPIProvider
	p.name = flaggerv1beta1.ProviderGatewayAPIV1beta1
	cd, r, _ := newSplitCanary(t, p)
	ctx := testContext(t)
	routes := router.Routes{Primary: 80, Canary: 20}
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if err := r.SetRoutes(ctx, cd, podinfo, routes); err != nil {
		t.Fatal(err)
	}
	route := &gatewayv1beta1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: cd.Namespace}}
	assertOwnedBy(t, cd, route)
	assertGolden(t, "gatewayapi/canary-80-20.golden", specYAML(t, route.Spec))
	if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != routes {
		t.Errorf("GetRoutes = %+v, %v; want %+v", got, err, routes)
	}
}

func TestRenderHTTPRoute_FollowsServiceSpec(t *testing.T) {
	t.Parallel()
	gateway := []flaggerv1beta1.ParentReference{{Name: "public"}}
	for _, tc := range []struct {
		name    string
		service flaggerv1beta1.CanaryService
		routes  router.Routes
	}{
		{name: "minimal", service: flaggerv1beta1.CanaryService{Port: 9898, GatewayRefs: gateway}, routes: router.Routes{Primary: 70, Canary: 30}},
		{name: "full-path-rewrite-and-mirrors", service: flaggerv1beta1.CanaryService{
			Port: 9898, GatewayRefs: gateway,
			Match: []flaggerv1beta1.HTTPMatchRequest{
				{URI: &flaggerv1beta1.StringMatch{Exact: ptr.To("/login")}, Method: &flaggerv1beta1.StringMatch{Exact: ptr.To("POST")}},
				{URI: &flaggerv1beta1.StringMatch{Regex: ptr.To("/v[0-9]+/login")}, Headers: map[string]flaggerv1beta1.StringMatch{"x-tenant": {Exact: ptr.To("a")}}},
			},
			Rewrite: &flaggerv1beta1.HTTPRewrite{URI: "/auth", Type: "ReplaceFullPath", Authority: "auth.internal"},
			Mirror:  []flaggerv1beta1.HTTPRequestMirrorFilter{{BackendRef: flaggerv1beta1.BackendObjectReference{Name: "recorder", Port: ptr.To[int32](8080)}}},
		}, routes: router.Routes{Primary: 100, Mirrored: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cd := &flaggerv1beta1.Canary{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
				Spec:       flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"}, Service: tc.service},
			}
			spec, err := router.RenderHTTPRoute(cd, tc.routes)
			if err != nil {
				t.Fatal(err)
			}
			assertGolden(t, "gatewayapi/render-"+tc.name+".golden", specYAML(t, spec))
		})
	}
}
