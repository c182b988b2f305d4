package meshsim

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// httpRouteTo writes the HTTPRoute as Sluice's Gateway API router renders
// it: with matches, one A/B rule per match carrying the split, then the
// default rule (a prefix match on /) to the primary; without, only the
// default rule carrying the split.
func (f *fixture) httpRouteTo(primaryWeight, canaryWeight int, matches ...gatewayv1.HTTPRouteMatch) {
	f.t.Helper()
	backends := func(p, c int) []gatewayv1.HTTPBackendRef {
		ref := func(name string, w int) gatewayv1.HTTPBackendRef {
			return gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
				BackendObjectReference: gatewayv1.BackendObjectReference{
					Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")),
					Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(9898)),
				},
				Weight: ptr.To(int32(w)),
			}}
		}
		return []gatewayv1.HTTPBackendRef{ref(apex+"-primary", p), ref(apex+"-canary", c)}
	}
	root := gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{
		Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/"),
	}}
	var rules []gatewayv1.HTTPRouteRule
	def := backends(primaryWeight, canaryWeight)
	for _, m := range matches {
		m.Path = root.Path
		rules = append(rules, gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{m}, BackendRefs: backends(primaryWeight, canaryWeight)})
		def = backends(100, 0)
	}
	rules = append(rules, gatewayv1.HTTPRouteRule{Matches: []gatewayv1.HTTPRouteMatch{root}, BackendRefs: def})
	f.httpRoute(rules...)
	want := Routes{Primary: primaryWeight, Canary: canaryWeight, Matches: len(matches), Found: true}
	if len(matches) > 0 {
		want.Primary, want.Canary = 100, 0
	}
	f.eventually("the sim applies "+fmt.Sprint(want), func() bool { return f.sim.Routes() == want })
}

// httpRoute creates or updates the HTTPRoute with the rules.
func (f *fixture) httpRoute(rules ...gatewayv1.HTTPRouteRule) {
	f.t.Helper()
	hr := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: f.ns}}
	err := kube.Get(f.t.Context(), client.ObjectKeyFromObject(hr), hr)
	hr.Spec.ParentRefs = []gatewayv1.ParentReference{{Name: "public"}}
	hr.Spec.Rules = rules
	switch {
	case err == nil:
		err = kube.Update(f.t.Context(), hr)
	case client.IgnoreNotFound(err) == nil:
		err = kube.Create(f.t.Context(), hr)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

func TestGatewayAPI_SplitsRequestsByTheHTTPRouteWeights(t *testing.T) {
	t.Parallel()
	f := newProviderFixture(t, ProviderGatewayAPI)
	f.pod("podinfo-primary-5d8f7-p1", true, true, fast)
	f.pod("podinfo-7c9b4-c1", false, true, fast)
	f.waitReady(1, 1)

	f.httpRouteTo(100, 0)
	if got := f.send(200); got["primary 200"] != 200 {
		t.Errorf("100/0: want every request on the primary, got %v", got)
	}
	f.httpRouteTo(80, 20)
	const n = 500
	got := f.send(n)
	if got["primary 200"]+got["canary 200"] != n || !within(got["canary 200"], n, 0.2, 0.07) {
		t.Errorf("80/20: want about 20%% of %d requests on the canary, got %v", n, got)
	}
	f.httpRouteTo(0, 100)
	if got := f.send(200); got["canary 200"] != 200 {
		t.Errorf("0/100: want every request on the canary, got %v", got)
	}
}

func TestGatewayAPI_RoutesMatchingRequestsToTheCanaryDuringAnABTest(t *testing.T) {
	t.Parallel()
	f := newProviderFixture(t, ProviderGatewayAPI)
	f.pod("podinfo-primary-5d8f7-p1", true, true, fast)
	f.pod("podinfo-7c9b4-c1", false, true, fast)
	f.waitReady(1, 1)
	// The A/B rules carry 0/100 during an A/B test.
	f.httpRouteTo(0, 100,
		gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{Name: "x-canary", Value: "insider"}}},
		gatewayv1.HTTPRouteMatch{Headers: []gatewayv1.HTTPHeaderMatch{{
			Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "cookie", Value: "^(.*?;)?(canary=always)(;.*)?$",
		}}},
	)
	for _, tc := range []struct {
		header []string
		want   string
	}{
		{[]string{"X-Canary", "insider"}, "canary 200"},
		{[]string{"X-Canary", "outsider"}, "primary 200"},
		{[]string{"Cookie", "a=b;canary=always;c=d"}, "canary 200"},
		{[]string{"Cookie", "canary=never"}, "primary 200"},
		{nil, "primary 200"},
	} {
		if got := f.send(50, tc.header...); got[tc.want] != 50 {
			t.Errorf("header %q: want %s for all 50 requests, got %v", tc.header, tc.want, got)
		}
	}
}

func TestGatewayAPI_PinsUsersWithTheBackendsSetCookie(t *testing.T) {
	t.Parallel()
	f := newProviderFixture(t, ProviderGatewayAPI)
	f.pod("p1", true, true, fast)
	f.pod("c1", false, true, fast)
	f.waitReady(1, 1)
	// The rules of stickyCases, as Sluice's Gateway API router renders
	// session affinity: Set-Cookie in a backend's ResponseHeaderModifier.
	cookieMatch := func(cookie string) []gatewayv1.HTTPRouteMatch {
		return []gatewayv1.HTTPRouteMatch{{Headers: []gatewayv1.HTTPHeaderMatch{{
			Type: ptr.To(gatewayv1.HeaderMatchRegularExpression), Name: "cookie", Value: ".*" + cookie + ".*",
		}}}}
	}
	to := func(name string, weight int32, mod *gatewayv1.HTTPHeaderFilter) gatewayv1.HTTPBackendRef {
		b := gatewayv1.HTTPBackendRef{BackendRef: gatewayv1.BackendRef{
			BackendObjectReference: gatewayv1.BackendObjectReference{Name: gatewayv1.ObjectName(name), Port: ptr.To(gatewayv1.PortNumber(9898))},
			Weight:                 ptr.To(weight),
		}}
		if mod != nil {
			b.Filters = []gatewayv1.HTTPRouteFilter{{Type: gatewayv1.HTTPRouteFilterResponseHeaderModifier, ResponseHeaderModifier: mod}}
		}
		return b
	}
	f.httpRoute(
		gatewayv1.HTTPRouteRule{Matches: cookieMatch("canary-user=c0ffee"), BackendRefs: []gatewayv1.HTTPBackendRef{
			to(apex+"-primary", 0, nil), to(apex+"-canary", 100, nil),
		}},
		gatewayv1.HTTPRouteRule{Matches: cookieMatch("canary-user=0ld"), BackendRefs: []gatewayv1.HTTPBackendRef{
			to(apex+"-primary", 100, &gatewayv1.HTTPHeaderFilter{
				Add:    []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: "canary-user=0ld; Max-Age=-1"}},
				Set:    []gatewayv1.HTTPHeader{{Name: "Content-Type", Value: "text/plain"}},
				Remove: []string{HeaderRevision},
			}),
			to(apex+"-canary", 0, nil),
		}},
		gatewayv1.HTTPRouteRule{BackendRefs: []gatewayv1.HTTPBackendRef{
			to(apex+"-primary", 50, nil),
			to(apex+"-canary", 50, &gatewayv1.HTTPHeaderFilter{
				Add: []gatewayv1.HTTPHeader{{Name: "Set-Cookie", Value: "canary-user=c0ffee; Max-Age=600"}},
			}),
		}},
	)
	f.eventually("the sim applies the cookie rules", func() bool {
		return f.sim.Routes() == Routes{Primary: 50, Canary: 50, Matches: 2, Found: true}
	})
	f.expectAnswers(stickyCases)
}

func TestGatewayAPI_ExportsTheApplicationsRequestMetrics(t *testing.T) {
	t.Parallel()
	f := newProviderFixture(t, ProviderGatewayAPI)
	f.pod("podinfo-primary-5d8f7-p1", true, true, fast)
	f.pod("podinfo-7c9b4-c1", false, true, map[string]string{AnnotationLatency: "1", AnnotationErrorRate: "0.3"})
	f.waitReady(1, 1)
	f.httpRouteTo(50, 50)

	const n = 600
	got := f.send(n)
	if got["primary 200"]+got["canary 200"]+got["canary 500"] != n {
		t.Fatalf("want all %d requests answered, got %v", n, got)
	}
	// The labels of Sluice's builtin gatewayapi queries
	// (pkg/metrics/builtin.go) select each pod's requests by status.
	durations := f.scrape("http_request_duration_seconds")
	for _, tc := range []struct {
		pod, status string
		want        int
	}{
		{"podinfo-7c9b4-c1", "200", got["canary 200"]},
		{"podinfo-7c9b4-c1", "500", got["canary 500"]},
		{"podinfo-primary-5d8f7-p1", "200", got["primary 200"]},
	} {
		sel := map[string]string{"kubernetes_namespace": f.ns, "kubernetes_pod_name": tc.pod, "status": tc.status}
		ms := where(durations, sel)
		if len(ms) != 1 || int(ms[0].GetHistogram().GetSampleCount()) != tc.want {
			t.Errorf("http_request_duration_seconds%v: want one series of %d requests, got %v", sel, tc.want, ms)
		}
	}
	if got["canary 500"] == 0 {
		t.Errorf("want some of the canary's requests to fail, got %v", got)
	}
	if istio := f.scrape("istio_requests_total"); len(istio) != 0 {
		t.Errorf("want no Istio metrics from the Gateway API mode, got %v", istio)
	}
}
