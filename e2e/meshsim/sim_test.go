package meshsim

import (
	"math"
	"testing"

	istionetworking "istio.io/api/networking/v1alpha3"
)

// fast is the annotations of a healthy pod that answers in about 1 ms.
var fast = map[string]string{AnnotationLatency: "1"}

// within reports whether got is want, give or take tol (fractions of n).
func within(got, n int, want, tol float64) bool {
	return math.Abs(float64(got)/float64(n)-want) <= tol
}

func TestSim_SplitsRequestsByTheVirtualServiceWeights(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.pod("p2", true, true, fast)
	f.pod("c1", false, true, fast)
	f.waitReady(2, 1)

	f.routeTo(100, 0)
	if got := f.send(200); got["primary 200"] != 200 {
		t.Errorf("100/0: want every request on the primary, got %v", got)
	}

	f.routeTo(80, 20)
	const n = 500
	got := f.send(n)
	if got["primary 200"]+got["canary 200"] != n || !within(got["canary 200"], n, 0.2, 0.07) {
		t.Errorf("80/20: want about 20%% of %d requests on the canary, got %v", n, got)
	}

	f.routeTo(0, 100)
	if got := f.send(200); got["canary 200"] != 200 {
		t.Errorf("0/100: want every request on the canary, got %v", got)
	}
}

func TestSim_RoutesMatchingRequestsToTheCanaryDuringAnABTest(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.pod("c1", false, true, fast)
	f.waitReady(1, 1)
	f.routeTo(100, 0,
		&istionetworking.HTTPMatchRequest{Headers: map[string]*istionetworking.StringMatch{
			"x-canary": {MatchType: &istionetworking.StringMatch_Exact{Exact: "insider"}},
		}},
		&istionetworking.HTTPMatchRequest{Headers: map[string]*istionetworking.StringMatch{
			"cookie": {MatchType: &istionetworking.StringMatch_Regex{Regex: "^(.*?;)?(canary=always)(;.*)?$"}},
		}},
		&istionetworking.HTTPMatchRequest{Headers: map[string]*istionetworking.StringMatch{
			"user-agent": {MatchType: &istionetworking.StringMatch_Prefix{Prefix: "Mobile"}},
		}},
	)
	for _, tc := range []struct {
		header []string
		want   string
	}{
		{[]string{"X-Canary", "insider"}, "canary 200"},
		{[]string{"X-Canary", "outsider"}, "primary 200"},
		{[]string{"Cookie", "a=b;canary=always;c=d"}, "canary 200"},
		{[]string{"Cookie", "canary=never"}, "primary 200"},
		{[]string{"User-Agent", "Mobile Safari"}, "canary 200"},
		{nil, "primary 200"},
	} {
		if got := f.send(50, tc.header...); got[tc.want] != 50 {
			t.Errorf("header %q: want %s for all 50 requests, got %v", tc.header, tc.want, got)
		}
	}
}

func TestSim_ExportsTheCanarysErrorsAsIstioDoes(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.pod("c1", false, true, map[string]string{AnnotationLatency: "1", AnnotationErrorRate: "0.3"})
	f.waitReady(1, 1)
	f.routeTo(50, 50)

	const n = 800
	got := f.send(n)
	canaryN := got["canary 200"] + got["canary 500"]
	if got["primary 200"]+canaryN != n || !within(canaryN, n, 0.5, 0.08) {
		t.Fatalf("want about half of %d requests on the canary, all answered, got %v", n, got)
	}
	if !within(got["canary 500"], canaryN, 0.3, 0.08) {
		t.Errorf("want about 30%% of the canary's %d requests to fail, got %v", canaryN, got)
	}

	// The labels of Sluice's builtin Istio query (pkg/metrics/builtin.go)
	// select the canary's requests and its failures exactly.
	requests := f.scrape("istio_requests_total")
	canarySel := map[string]string{
		"reporter": "destination", "destination_workload_namespace": f.ns, "destination_workload": workload,
	}
	for code, want := range map[string]int{"200": got["canary 200"], "500": got["canary 500"]} {
		sel := map[string]string{"response_code": code, "destination_service_name": apex + "-canary"}
		for k, v := range canarySel {
			sel[k] = v
		}
		ms := where(requests, sel)
		if len(ms) != 1 || int(ms[0].GetCounter().GetValue()) != want {
			t.Errorf("istio_requests_total%v: want one series of %d, got %v", sel, want, ms)
		}
	}
	primary := where(requests, map[string]string{
		"reporter": "destination", "destination_workload": workload + "-primary", "response_code": "200",
		"destination_service_name": apex + "-primary", "destination_workload_namespace": f.ns,
	})
	if len(primary) != 1 || int(primary[0].GetCounter().GetValue()) != got["primary 200"] {
		t.Errorf("primary's istio_requests_total: want %d, got %v", got["primary 200"], primary)
	}
	if src := where(requests, map[string]string{"reporter": "source"}); len(src) == 0 {
		t.Errorf("want the gateway's reporter=source series too, got none")
	}
}

func TestSim_FailsTheShareOfAVersionWithoutReadyPods(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	c1 := f.pod("c1", false, false, fast)
	f.waitReady(1, 0)
	f.routeTo(50, 50)

	const n = 400
	got := f.send(n)
	if got["primary 200"]+got["canary 503"] != n || !within(got["canary 503"], n, 0.5, 0.08) {
		t.Errorf("want the canary's half of %d requests to fail with 503, got %v", n, got)
	}
	uh := where(f.scrape("istio_requests_total"), map[string]string{
		"reporter": "source", "destination_service_name": apex + "-canary", "response_code": "503", "response_flags": "UH",
	})
	if len(uh) != 1 || int(uh[0].GetCounter().GetValue()) != got["canary 503"] {
		t.Errorf("want the gateway to count %d UH 503s, got %v", got["canary 503"], uh)
	}
	if dst := where(f.scrape("istio_requests_total"), map[string]string{"reporter": "destination", "destination_workload": workload}); len(dst) != 0 {
		t.Errorf("want no destination series for a canary without pods, got %v", dst)
	}

	f.setReady(c1, true)
	f.waitReady(1, 1)
	if got := f.send(200); got["primary 200"]+got["canary 200"] != 200 {
		t.Errorf("want every request answered once the canary is ready, got %v", got)
	}
}

func TestSim_MeasuresEachVersionsLatency(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.pod("c1", false, true, map[string]string{AnnotationLatency: "40"})
	f.waitReady(1, 1)
	f.routeTo(50, 50)
	got := f.send(100)

	durations := f.scrape("istio_request_duration_milliseconds")
	for _, tc := range []struct {
		workload       string
		count          int
		minMean, maxLe float64
	}{
		{workload + "-primary", got["primary 200"], 0, 25},
		{workload, got["canary 200"], 35, 0},
	} {
		ms := where(durations, map[string]string{
			"reporter": "destination", "destination_workload": tc.workload, "destination_workload_namespace": f.ns, "response_code": "200",
		})
		if len(ms) != 1 {
			t.Fatalf("%s: want one duration series, got %v", tc.workload, ms)
		}
		h := ms[0].GetHistogram()
		if int(h.GetSampleCount()) != tc.count || tc.count == 0 {
			t.Errorf("%s: want %d samples, got %d", tc.workload, tc.count, h.GetSampleCount())
			continue
		}
		mean := h.GetSampleSum() / float64(h.GetSampleCount())
		if mean < tc.minMean {
			t.Errorf("%s: want a mean of at least %.0f ms, got %.1f", tc.workload, tc.minMean, mean)
		}
		for _, b := range h.GetBucket() {
			if tc.maxLe > 0 && b.GetUpperBound() == tc.maxLe && int(b.GetCumulativeCount()) < tc.count*9/10 {
				t.Errorf("%s: want most requests under %.0f ms, got %d of %d", tc.workload, tc.maxLe, b.GetCumulativeCount(), tc.count)
			}
			if tc.minMean > 0 && b.GetUpperBound() == 25 && b.GetCumulativeCount() != 0 {
				t.Errorf("%s: want no request under 25 ms, got %d", tc.workload, b.GetCumulativeCount())
			}
		}
	}
}

func TestSim_AnswersNotFoundWithoutAVirtualService(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.waitReady(1, 0)
	if r := f.sim.Routes(); r.Found {
		t.Fatalf("want no routes before the VirtualService exists, got %+v", r)
	}
	if got := f.send(10); got[" 404"] != 10 {
		t.Errorf("want 404 for every request, got %v", got)
	}
}

func TestSim_CopiesMirroredRequestsToTheCanary(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.pod("c1", false, true, map[string]string{AnnotationLatency: "1", AnnotationErrorRate: "1"})
	f.waitReady(1, 1)
	f.routeTo(100, 0)
	f.mirror(50)
	f.eventually("the sim mirrors", func() bool { return f.sim.Routes().Mirrored })

	const n = 400
	if got := f.send(n); got["primary 200"] != n {
		t.Fatalf("want every answer from the primary, whatever the mirror says, got %v", got)
	}
	sel := map[string]string{"reporter": "destination", "destination_workload": workload, "response_code": "500"}
	var mirrored float64
	f.eventually("the mirrored requests are counted", func() bool {
		ms := where(f.scrape("istio_requests_total"), sel)
		if len(ms) == 1 {
			mirrored = ms[0].GetCounter().GetValue()
		}
		return within(int(mirrored), n, 0.5, 0.1)
	})
}

func TestSim_PinsUsersWithTheDestinationsSetCookie(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.pod("c1", false, true, fast)
	f.waitReady(1, 1)
	// As Sluice's Istio router renders session affinity (see
	// pkg/router/testdata/istio/affinity-*.golden): a route for the
	// canary's cookie, one that expires an old cookie, then the split whose
	// canary sets the cookie. The expiring route also replaces and removes
	// a header of the backend's.
	cookieMatch := func(cookie string) []*istionetworking.HTTPMatchRequest {
		return []*istionetworking.HTTPMatchRequest{{Headers: map[string]*istionetworking.StringMatch{
			"cookie": {MatchType: &istionetworking.StringMatch_Regex{Regex: ".*" + cookie + ".*"}},
		}}}
	}
	to := func(host string, weight int32, ops *istionetworking.Headers_HeaderOperations) *istionetworking.HTTPRouteDestination {
		return &istionetworking.HTTPRouteDestination{
			Destination: &istionetworking.Destination{Host: host}, Weight: weight,
			Headers: &istionetworking.Headers{Response: ops},
		}
	}
	f.virtualService(
		&istionetworking.HTTPRoute{Name: "sticky-canary", Match: cookieMatch("canary-user=c0ffee"), Route: []*istionetworking.HTTPRouteDestination{
			to(apex+"-primary", 0, nil), to(apex+"-canary", 100, nil),
		}},
		&istionetworking.HTTPRoute{Name: "expire-cookie", Match: cookieMatch("canary-user=0ld"), Route: []*istionetworking.HTTPRouteDestination{
			to(apex+"-primary", 100, &istionetworking.Headers_HeaderOperations{
				Add:    map[string]string{"Set-Cookie": "canary-user=0ld; Max-Age=-1"},
				Set:    map[string]string{"Content-Type": "text/plain"},
				Remove: []string{HeaderRevision},
			}),
			to(apex+"-canary", 0, nil),
		}},
		&istionetworking.HTTPRoute{Name: "default", Route: []*istionetworking.HTTPRouteDestination{
			to(apex+"-primary", 50, nil),
			to(apex+"-canary", 50, &istionetworking.Headers_HeaderOperations{Add: map[string]string{"Set-Cookie": "canary-user=c0ffee; Max-Age=600"}}),
		}},
	)
	f.eventually("the sim applies the cookie routes", func() bool {
		return f.sim.Routes() == Routes{Primary: 50, Canary: 50, Matches: 2, Found: true}
	})
	f.expectAnswers(stickyCases)
}

// stickyCases are the answers through the routes of a session affinity
// test: the canary sets its cookie on the split, requests with the cookie
// all reach the canary, and requests with the old cookie reach the
// primary, which expires it.
var stickyCases = []stickyCase{
	{"", map[string]map[string][]string{
		"primary": {"Set-Cookie": nil, "Content-Type": {"text/plain; charset=utf-8"}},
		"canary":  {"Set-Cookie": {"canary-user=c0ffee; Max-Age=600"}},
	}},
	{"a=b; canary-user=c0ffee", map[string]map[string][]string{"canary": {"Set-Cookie": nil}}},
	{"canary-user=c0ffee; c=d", map[string]map[string][]string{"canary": {"Set-Cookie": nil}}},
	{"canary-user=0ld", map[string]map[string][]string{"primary": {
		"Set-Cookie": {"canary-user=0ld; Max-Age=-1"}, "Content-Type": {"text/plain"}, HeaderRevision: nil, HeaderPod: {"p1"},
	}}},
}

// TestSim_GivesTheBaselineItsShareOfAThreeWaySplit: with analysis.baseline
// Sluice's Istio router adds <apex>-baseline as a third weighted
// destination of the default route. The baseline's share fails with 503
// (UH) until its pods are ready, as Envoy answers; then its own pods answer
// it, with their own latency, and Istio's metrics name the baseline as the
// destination workload, which is what a comparison against the baseline
// queries.
func TestSim_GivesTheBaselineItsShareOfAThreeWaySplit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.pod("p1", true, true, fast)
	f.pod("c1", false, true, fast)
	b1 := f.versionPod("b1", baseline, false, map[string]string{AnnotationLatency: "30"})
	f.waitReady(1, 1)
	to := func(host string, weight int32) *istionetworking.HTTPRouteDestination {
		return &istionetworking.HTTPRouteDestination{Destination: &istionetworking.Destination{Host: host}, Weight: weight}
	}
	f.virtualService(&istionetworking.HTTPRoute{Name: "default", Route: []*istionetworking.HTTPRouteDestination{
		to(apex+"-primary", 60), to(apex+"-canary", 20), to(apex+"-baseline", 20),
	}})
	f.eventually("the sim applies the three-way split", func() bool {
		return f.sim.Routes() == Routes{Primary: 60, Canary: 20, Baseline: 20, Found: true}
	})

	const n = 1000
	unready := f.send(n)
	if unready["primary 200"]+unready["canary 200"]+unready["baseline 503"] != n || !within(unready["baseline 503"], n, 0.2, 0.06) {
		t.Errorf("baseline not ready: want its 20%% of %d requests to fail with 503, got %v", n, unready)
	}
	uh := where(f.scrape("istio_requests_total"), map[string]string{
		"reporter": "source", "destination_service_name": apex + "-baseline", "response_code": "503", "response_flags": "UH",
	})
	if len(uh) != 1 || int(uh[0].GetCounter().GetValue()) != unready["baseline 503"] {
		t.Errorf("want the gateway to count %d UH 503s for the baseline, got %v", unready["baseline 503"], uh)
	}

	f.setReady(b1, true)
	f.eventually("the baseline's pod is ready", func() bool { return f.sim.ReadyBaseline() == 1 })
	got := f.send(n)
	for v, share := range map[string]float64{"primary": 0.6, "canary": 0.2, "baseline": 0.2} {
		if !within(got[v+" 200"], n, share, 0.06) {
			t.Errorf("60/20/20: want about %.0f%% of %d requests answered by the %s, got %v", share*100, n, v, got)
		}
	}
	if sum := got["primary 200"] + got["canary 200"] + got["baseline 200"]; sum != n {
		t.Errorf("60/20/20: want every request answered, got %v", got)
	}

	requests := f.scrape("istio_requests_total")
	durations := f.scrape("istio_request_duration_milliseconds")
	for _, tc := range []struct {
		version, workload, service string
		minMean, maxMean           float64
	}{
		{"primary", workload + "-primary", apex + "-primary", 0, 20},
		{"canary", workload, apex + "-canary", 0, 20},
		{"baseline", workload + "-baseline", apex + "-baseline", 25, 0},
	} {
		sel := map[string]string{
			"reporter": "destination", "destination_workload": tc.workload, "destination_workload_namespace": f.ns,
			"destination_service_name": tc.service, "destination_app": tc.workload, "response_code": "200",
		}
		// The counters hold the answers of both rounds.
		want := got[tc.version+" 200"] + unready[tc.version+" 200"]
		if ms := where(requests, sel); len(ms) != 1 || int(ms[0].GetCounter().GetValue()) != want {
			t.Errorf("istio_requests_total%v: want one series of %d, got %v", sel, want, ms)
		}
		ms := where(durations, sel)
		if len(ms) != 1 || ms[0].GetHistogram().GetSampleCount() == 0 {
			t.Errorf("istio_request_duration_milliseconds%v: want one series with samples, got %v", sel, ms)
			continue
		}
		h := ms[0].GetHistogram()
		mean := h.GetSampleSum() / float64(h.GetSampleCount())
		if mean < tc.minMean || (tc.maxMean > 0 && mean > tc.maxMean) {
			t.Errorf("%s: mean latency %.1f ms, want it within [%.0f, %.0f] (0: unbounded)", tc.version, mean, tc.minMean, tc.maxMean)
		}
	}
}
