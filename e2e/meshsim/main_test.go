package meshsim

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	istionetworking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicedev/sluice/internal/testenv"
)

// env is the API server every test of the package shares, and kube a
// client of it whose rate limit does not slow parallel tests down.
var (
	env  *testenv.Env
	kube client.Client
)

func TestMain(m *testing.M) {
	var err error
	env, err = testenv.Start(testenv.Options{Istio: true, GatewayAPI: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 500, 1000
	kube, err = client.New(cfg, client.Options{Scheme: env.Scheme})
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	os.Exit(code)
}

// The workload and apex Service of every test, each in its own namespace.
const (
	workload = "podinfo"
	apex     = "podinfo"
)

// fixture is a namespace with a running sim.
type fixture struct {
	t   *testing.T
	ns  string
	sim *Sim
}

// newFixture creates a namespace and starts a sim in it.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newProviderFixture(t, ProviderIstio)
}

// newProviderFixture creates a namespace and starts a sim of provider in
// it.
func newProviderFixture(t *testing.T, provider string) *fixture {
	t.Helper()
	ctx := t.Context()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "meshsim-"}}
	if err := kube.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Delete(context.Background(), ns) })
	sim, err := Start(ctx, Options{Config: env.Config, Namespace: ns.Name, Apex: apex, Workload: workload, Provider: provider})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Stop)
	return &fixture{t: t, ns: ns.Name, sim: sim}
}

// pod creates a pod of the canary (or, with primary, of the primary) with
// the sim's annotations, Running and Ready if ready says so.
func (f *fixture) pod(name string, isPrimary, isReady bool, annotations map[string]string) *corev1.Pod {
	f.t.Helper()
	v := canary
	if isPrimary {
		v = primary
	}
	return f.versionPod(name, v, isReady, annotations)
}

// versionPod creates a pod of version v (labelled app=<workload>,
// <workload>-primary or <workload>-baseline) with the sim's annotations,
// Running and Ready if ready says so.
func (f *fixture) versionPod(name string, v version, isReady bool, annotations map[string]string) *corev1.Pod {
	f.t.Helper()
	app := f.sim.workload(v)
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: f.ns, Annotations: annotations,
			Labels: map[string]string{"app": app, revisionLabel: "rev" + name},
		},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "podinfo:1"}}},
	}
	if err := kube.Create(f.t.Context(), p); err != nil {
		f.t.Fatal(err)
	}
	f.setReady(p, isReady)
	return p
}

// setReady sets a pod's status as the kubelet would.
func (f *fixture) setReady(p *corev1.Pod, isReady bool) {
	f.t.Helper()
	p.Status.Phase, p.Status.Conditions = corev1.PodPending, nil
	if isReady {
		p.Status.Phase = corev1.PodRunning
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}
	}
	if err := kube.Status().Update(f.t.Context(), p); err != nil {
		f.t.Fatal(err)
	}
}

// routeTo writes the VirtualService: routes with matches to the canary
// first (A/B), then a default route with the given weights, as Sluice's
// Istio router renders it.
func (f *fixture) routeTo(primaryWeight, canaryWeight int, matches ...*istionetworking.HTTPMatchRequest) {
	f.t.Helper()
	dests := func(p, c int) []*istionetworking.HTTPRouteDestination {
		return []*istionetworking.HTTPRouteDestination{
			{Destination: &istionetworking.Destination{Host: apex + "-primary"}, Weight: int32(p)},
			{Destination: &istionetworking.Destination{Host: apex + "-canary"}, Weight: int32(c)},
		}
	}
	var http []*istionetworking.HTTPRoute
	if len(matches) > 0 {
		http = append(http, &istionetworking.HTTPRoute{Name: "ab", Match: matches, Route: dests(0, 100)})
	}
	http = append(http, &istionetworking.HTTPRoute{Name: "default", Route: dests(primaryWeight, canaryWeight)})
	f.virtualService(http...)
	want := Routes{Primary: primaryWeight, Canary: canaryWeight, Matches: min(len(matches), 1), Found: true}
	f.eventually("the sim applies "+fmt.Sprint(want), func() bool { return f.sim.Routes() == want })
}

// virtualService creates or updates the VirtualService with the HTTP
// routes.
func (f *fixture) virtualService(http ...*istionetworking.HTTPRoute) {
	f.t.Helper()
	vs := &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: f.ns}}
	err := kube.Get(f.t.Context(), client.ObjectKeyFromObject(vs), vs)
	vs.Spec.Hosts, vs.Spec.Http = []string{apex}, http
	switch {
	case err == nil:
		err = kube.Update(f.t.Context(), vs)
	case client.IgnoreNotFound(err) == nil:
		err = kube.Create(f.t.Context(), vs)
	}
	if err != nil {
		f.t.Fatal(err)
	}
}

// mirror makes the default route copy percent of its requests to the
// canary, as Sluice's Istio router does for a mirrored split.
func (f *fixture) mirror(percent float64) {
	f.t.Helper()
	vs := &networkingv1.VirtualService{}
	if err := kube.Get(f.t.Context(), client.ObjectKey{Namespace: f.ns, Name: apex}, vs); err != nil {
		f.t.Fatal(err)
	}
	def := vs.Spec.Http[len(vs.Spec.Http)-1]
	def.Mirror = &istionetworking.Destination{Host: apex + "-canary"}
	def.MirrorPercentage = &istionetworking.Percent{Value: percent}
	if err := kube.Update(f.t.Context(), vs); err != nil {
		f.t.Fatal(err)
	}
}

// eventually waits up to 10 seconds for cond.
func (f *fixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitReady waits until the sim sees that many ready pods per version.
func (f *fixture) waitReady(primaryPods, canaryPods int) {
	f.t.Helper()
	f.eventually(fmt.Sprintf("%d primary and %d canary pods are ready", primaryPods, canaryPods), func() bool {
		p, c := f.sim.Ready()
		return p == primaryPods && c == canaryPods
	})
}

// tally counts answers by version header and status code, e.g.
// "canary 500".
type tally map[string]int

// send sends n GET requests through the proxy, 8 at a time, within 30
// seconds, with the given header (name, value) if any.
func (f *fixture) send(n int, hdr ...string) tally {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.t.Context(), 30*time.Second)
	defer cancel()
	var (
		mu   sync.Mutex
		out  = tally{}
		next atomic.Int64
		wg   sync.WaitGroup
		errs = make(chan error, 8)
	)
	for range 8 {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.sim.ProxyURL+"/api/info", nil)
				if err != nil {
					errs <- err
					return
				}
				if len(hdr) == 2 {
					req.Header.Set(hdr[0], hdr[1])
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				mu.Lock()
				out[fmt.Sprintf("%s %d", resp.Header.Get(HeaderVersion), resp.StatusCode)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		f.t.Fatal(err)
	}
	return out
}

// answer sends one GET request through the proxy, with the given header
// (name, value) if any, and returns the version that answered and the
// response's headers.
func (f *fixture) answer(hdr ...string) (string, http.Header) {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, f.sim.ProxyURL+"/api/info", nil)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(hdr) == 2 {
		req.Header.Set(hdr[0], hdr[1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.Header.Get(HeaderVersion), resp.Header
}

// stickyCase is what the answers to requests with one Cookie header carry:
// want maps each version that may answer to the response headers it must
// answer with (a nil value: the header is absent). Another version
// answering fails the case, and so does a version of want never answering.
type stickyCase struct {
	cookie string
	want   map[string]map[string][]string
}

// expectAnswers sends 40 requests per case and checks their answers.
func (f *fixture) expectAnswers(cases []stickyCase) {
	f.t.Helper()
	for _, tc := range cases {
		var hdr []string
		if tc.cookie != "" {
			hdr = []string{"Cookie", tc.cookie}
		}
		if err := f.checkAnswers(tc, hdr); err != nil {
			f.t.Errorf("cookie %q: %v", tc.cookie, err)
		}
	}
}

// checkAnswers sends the requests of one case and says what was wrong
// with the first wrong answer.
func (f *fixture) checkAnswers(tc stickyCase, hdr []string) error {
	f.t.Helper()
	seen := map[string]int{}
	for range 40 {
		v, h := f.answer(hdr...)
		seen[v]++
		want, ok := tc.want[v]
		if !ok {
			return fmt.Errorf("want answers from %v only, got one from %q", slices.Sorted(maps.Keys(tc.want)), v)
		}
		for name, values := range want {
			if got := h.Values(name); !slices.Equal(got, values) {
				return fmt.Errorf("%s answered with %s %q, want %q", v, name, got, values)
			}
		}
	}
	for v := range tc.want {
		if seen[v] == 0 {
			return fmt.Errorf("want some answers from %s, got %v", v, seen)
		}
	}
	return nil
}

// scrape returns the series of the metric family name on the sim's
// /metrics.
func (f *fixture) scrape(name string) []*dto.Metric {
	f.t.Helper()
	req, err := http.NewRequestWithContext(f.t.Context(), http.MethodGet, f.sim.MetricsURL, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	if families[name] == nil {
		return nil
	}
	return families[name].GetMetric()
}

// labelsOf returns a metric's labels as a map.
func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.GetLabel() {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// where keeps the metrics whose labels include want.
func where(ms []*dto.Metric, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range ms {
		got, ok := labelsOf(m), true
		for k, v := range want {
			ok = ok && got[k] == v
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// String lists a tally's keys and counts, for messages.
func (t tally) String() string {
	var b strings.Builder
	for k, v := range t {
		fmt.Fprintf(&b, "%s: %d; ", k, v)
	}
	return b.String()
}
