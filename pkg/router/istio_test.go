package router_test

import (
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

func TestIstioRouter_ReconcileCreatesOwnedDestinationRulesWithTrafficPolicy(t *testing.T) {
	t.Parallel()
	cd, r, writes := newSplitCanary(t, istioProvider)
	cd.Spec.Service.TrafficPolicy = &flaggerv1beta1.TrafficPolicy{
		ConnectionPool: &flaggerv1beta1.ConnectionPoolSettings{HTTP: &flaggerv1beta1.HTTPConnectionPoolSettings{
			HTTP1MaxPendingRequests: 100, MaxRequestsPerConnection: 10, IdleTimeout: "5m", H2UpgradePolicy: "UPGRADE",
		}},
		LoadBalancer: &flaggerv1beta1.LoadBalancerSettings{
			ConsistentHash:     &flaggerv1beta1.ConsistentHashLB{HTTPCookie: &flaggerv1beta1.HTTPCookie{Name: "user", TTL: "1h"}},
			WarmupDurationSecs: "1m",
			LocalityLbSetting:  &flaggerv1beta1.LocalityLoadBalancerSetting{Failover: []flaggerv1beta1.LocalityFailover{{From: "us-east", To: "us-west"}}},
		},
		OutlierDetection: &flaggerv1beta1.OutlierDetection{
			ConsecutiveErrors: 7, Consecutive5xxErrors: ptr.To[uint32](5), Interval: "30s", BaseEjectionTime: "1m", MaxEjectionPercent: 50,
		},
		TLS: &flaggerv1beta1.ClientTLSSettings{Mode: "ISTIO_MUTUAL", Sni: "podinfo.example.com"},
	}
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatalf("Reconcile: %v", err)
	}
	if n := writes(); n != 3 {
		t.Errorf("Reconcile wrote %d times, want 3 creations", n)
	}
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		dr := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: cd.Namespace}}
		assertOwnedBy(t, cd, dr)
		assertGolden(t, "istio/destinationrule-"+strings.TrimPrefix(name, "podinfo-")+".golden", specYAML(t, &dr.Spec))
	}
	assertOwnedBy(t, cd, istioProvider.object(cd.Namespace))
	if got, err := r.GetRoutes(ctx, cd, podinfo); err != nil || got != (router.Routes{Primary: 100}) {
		t.Errorf("GetRoutes after Reconcile = %+v, %v; want all on the primary", got, err)
	}
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	if n := writes(); n != 0 {
		t.Errorf("a second Reconcile wrote %d times, want none", n)
	}
}

func TestRenderVirtualService_FollowsServiceSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		service flaggerv1beta1.CanaryService
		routes  router.Routes
	}{
		{name: "minimal", service: flaggerv1beta1.CanaryService{Port: 9898}, routes: router.Routes{Primary: 70, Canary: 30}},
		{name: "delegation", service: flaggerv1beta1.CanaryService{Port: 9898, Delegation: true, Hosts: []string{"ignored.example.com"}, Gateways: []string{"ignored"}},
			routes: router.Routes{Primary: 100}},
		{name: "tcp", service: flaggerv1beta1.CanaryService{Port: 5432, AppProtocol: "tcp", Hosts: []string{"db.example.com"}}, routes: router.Routes{Primary: 60, Canary: 40}},
		{name: "source-match", service: flaggerv1beta1.CanaryService{Port: 9898, Match: []flaggerv1beta1.HTTPMatchRequest{
			{Name: "from-frontend", SourceLabels: map[string]string{"app": "frontend"}, Method: &flaggerv1beta1.StringMatch{Exact: ptr.To("GET")}, IgnoreURICase: true,
				URI: &flaggerv1beta1.StringMatch{Regex: ptr.To("/v[0-9]+/.*")}, WithoutHeaders: map[string]flaggerv1beta1.StringMatch{"x-debug": {}}},
		}, CorsPolicy: &flaggerv1beta1.CorsPolicy{AllowOrigin: []string{"https://a.example.com"}, AllowOrigins: []flaggerv1beta1.StringMatch{{Regex: ptr.To(`https://.*\.b\.example\.com`)}}}},
			routes: router.Routes{Primary: 100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cd := &flaggerv1beta1.Canary{
				ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Namespace: "test"},
				Spec:       flaggerv1beta1.CanarySpec{TargetRef: flaggerv1beta1.LocalObjectReference{Name: "podinfo"}, Service: tc.service},
			}
			spec, err := router.RenderVirtualService(cd, tc.routes)
			if err != nil {
				t.Fatal(err)
			}
			assertGolden(t, "istio/render-"+tc.name+".golden", specYAML(t, spec))
		})
	}
}

func TestIstioRouter_RejectsWhatIstioCannotExpress(t *testing.T) {
	t.Parallel()
	cd, r, writes := newSplitCanary(t, istioProvider)
	ctx := testContext(t)
	if err := r.Reconcile(ctx, cd, podinfo); err != nil {
		t.Fatal(err)
	}
	writes()
	for _, tc := range []struct {
		name     string
		edit     func(*flaggerv1beta1.CanarySpec)
		routes   router.Routes
		wantErrs []string
	}{
		{
			name: "suffix header match in A/B test",
			edit: func(s *flaggerv1beta1.CanarySpec) {
				abTesting(s.Analysis)
				s.Analysis.Match[0].Headers["x-canary"] = flaggerv1beta1.HeaderMatch{Suffix: ptr.To(".beta")}
			},
			routes:   router.Routes{Canary: 100},
			wantErrs: []string{`spec.analysis.match[0].headers.x-canary: suffix matches are not supported by Istio; use a regex such as ".*\\.beta$"`},
		},
		{
			name: "suffix URI match and bad durations, all reported",
			edit: func(s *flaggerv1beta1.CanarySpec) {
				s.Service.Match[0].URI = &flaggerv1beta1.StringMatch{Suffix: ptr.To(".json")}
				s.Service.Timeout = "soon"
				s.Service.Retries.PerTryTimeout = "10"
			},
			routes: router.Routes{Primary: 100},
			wantErrs: []string{
				"spec.service.match[0].uri: suffix matches are not supported by Istio",
				`spec.service.timeout: time: invalid duration "soon"`,
				`spec.service.retries.perTryTimeout: time: missing unit in duration "10"`,
			},
		},
		{
			name:     "mirroring TCP",
			edit:     func(s *flaggerv1beta1.CanarySpec) { s.Service.AppProtocol = "TCP"; mirroring(s.Analysis) },
			routes:   router.Routes{Primary: 100, Mirrored: true},
			wantErrs: []string{"istio cannot mirror TCP traffic"},
		},
		{
			name:     "A/B test on TCP",
			edit:     func(s *flaggerv1beta1.CanarySpec) { s.Service.AppProtocol = "tcp"; abTesting(s.Analysis) },
			routes:   router.Routes{Canary: 100},
			wantErrs: []string{"A/B testing matches HTTP requests, but spec.service.appProtocol is tcp"},
		},
	} {
		bad := cd.DeepCopy()
		tc.edit(&bad.Spec)
		err := r.SetRoutes(ctx, bad, podinfo, tc.routes)
		if err == nil {
			t.Errorf("%s: SetRoutes succeeded", tc.name)
			continue
		}
		for _, want := range append(tc.wantErrs, "routing Canary "+cd.Namespace+"/podinfo", "rendering VirtualService "+cd.Namespace+"/podinfo") {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %q does not contain %q", tc.name, err, want)
			}
		}
	}

	for _, tc := range []struct {
		lb   flaggerv1beta1.LoadBalancerSettings
		want string
	}{
		{lb: flaggerv1beta1.LoadBalancerSettings{Simple: "FASTEST"}, want: `spec.service.trafficPolicy.loadBalancer.simple: unknown value "FASTEST"`},
		{
			lb:   flaggerv1beta1.LoadBalancerSettings{ConsistentHash: &flaggerv1beta1.ConsistentHashLB{UseSourceIP: true, MinimumRingSize: 1024}},
			want: "spec.service.trafficPolicy.loadBalancer.consistentHash.minimumRingSize: cannot be set through Istio's Go client",
		},
		{
			lb:   flaggerv1beta1.LoadBalancerSettings{ConsistentHash: &flaggerv1beta1.ConsistentHashLB{UseSourceIP: true, HTTPHeaderName: "x-user"}},
			want: "spec.service.trafficPolicy.loadBalancer.consistentHash: set exactly one of",
		},
	} {
		bad := cd.DeepCopy()
		bad.Spec.Service.TrafficPolicy.LoadBalancer = &tc.lb
		err := r.Reconcile(ctx, bad, podinfo)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "rendering DestinationRule") {
			t.Errorf("Reconcile with load balancer %+v: error = %v, want one containing %q", tc.lb, err, tc.want)
		}
	}
	if n := writes(); n != 0 {
		t.Errorf("refused input wrote %d times", n)
	}
}
