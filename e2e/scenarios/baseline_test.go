//go:build e2e

package scenarios

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/cluster"
)

// The fresh baseline (analysis.baseline) on the local control plane: the
// baseline's pods are really scheduled and become ready, the simulated
// mesh sends them their share of a three-way split, the comparison reads
// their latency from the real Prometheus, and the garbage collector
// deletes their pods with the Deployment.

const (
	// baselineName is the name of the baseline Deployment and Service.
	baselineName = app + "-baseline"
	// baselineMetric is the comparison of the canary's mean latency with
	// the baseline's.
	baselineMetric = "latency-vs-baseline"
	// baseLatency is the simulated latency, in milliseconds, of the pods
	// of podinfo:6.0.0, which the primary and the baseline run. It is long
	// enough for a 1.5x slower canary to stand out of the delays a busy
	// machine adds to every answer.
	baseLatency = 100
)

// meanLatencyTemplate is a MetricTemplate on the scenario's Prometheus:
// the mean latency, in milliseconds, of the requests the workload's
// sidecars answered over the metric's interval, from Istio's histogram.
// {{ target }} selects the canary, or the baseline when compared.
func (s *scenario) meanLatencyTemplate() *flaggerv1beta1.MetricTemplate {
	sel := `reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"`
	return &flaggerv1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "mean-latency"},
		Spec: flaggerv1beta1.MetricTemplateSpec{
			Provider: flaggerv1beta1.MetricTemplateProvider{Type: "prometheus", Address: s.prom.URL},
			Query: "sum(rate(istio_request_duration_milliseconds_sum{" + sel + "}[{{ interval }}]))\n/\n" +
				"sum(rate(istio_request_duration_milliseconds_count{" + sel + "}[{{ interval }}]))",
		},
	}
}

// baselineCanary is an Istio Canary whose analysis runs a baseline at the
// canary's weight (10, 20, 30%) and has two latency checks: the builtin
// P99 under a fixed, loose 2 s, and the mean compared with the
// baseline's, which fails a canary more than 20% slower. The comparison
// holds the step until each side has 6 samples, one per 5 seconds. The
// load test runs 8 clients, so that each 5-second sample of the canary
// and of the baseline averages some 40 requests even at 10%.
func (s *scenario) baselineCanary() *flaggerv1beta1.Canary {
	return canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{
		StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](30),
		Baseline: true,
		Metrics: []flaggerv1beta1.CanaryMetric{
			{Name: "request-duration", Interval: "20s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(2000.0)}},
			{
				Name: baselineMetric, Interval: "5s", OnNoData: flaggerv1beta1.NoDataHold,
				TemplateRef: &flaggerv1beta1.CrossNamespaceObjectReference{Name: "mean-latency"},
				Compare: &flaggerv1beta1.CanaryCompare{
					Against: flaggerv1beta1.CompareAgainstBaseline, Direction: flaggerv1beta1.CompareIncrease,
					AllowedIncrease: ptr.To(1.2), MinSamples: ptr.To[int32](6),
				},
			},
		},
		Webhooks: []flaggerv1beta1.CanaryWebhook{s.loadTest("-c 8 ")},
	})
}

// baselineRun is what a scenario saw of the baseline while the release
// ran.
type baselineRun struct {
	// splits are the distinct weights of the VirtualService's default route
	// while it gave the baseline a share.
	splits seen[weights]
	// readyAtFirstSplit is the baseline Deployment's ready replicas when
	// the split was first seen to give it a share (read just after).
	readyAtFirstSplit int32
}

// observe records the VirtualService's split and the baseline Deployment;
// it is called on every poll while the release runs.
func (r *baselineRun) observe(s *scenario) error {
	w, err := s.vsWeights()
	if err != nil || w.baseline == 0 {
		return nil //nolint:nilerr // the VirtualService may not be there yet; it is read again
	}
	if len(r.splits) == 0 {
		d := &appsv1.Deployment{}
		if err := s.get(baselineName, d); err != nil {
			return fmt.Errorf("%w: the VirtualService gives the baseline %d%%, but its Deployment cannot be read: %w", errStop, w.baseline, err)
		}
		r.readyAtFirstSplit = d.Status.ReadyReplicas
	}
	r.splits.add(w)
	return nil
}

// initializeBaseline creates podinfo, whose pods answer in baseLatency,
// the baseline Canary and its MetricTemplate, and waits until the Canary
// is initialized, without a baseline.
func (s *scenario) initializeBaseline() {
	s.t.Helper()
	target := podinfo()
	target.Spec.Template.Annotations[latencyAnnotation] = strconv.Itoa(baseLatency)
	s.create(s.meanLatencyTemplate(), target, s.baselineCanary())
	s.waitPhase(flaggerv1beta1.CanaryPhaseInitialized, 90*time.Second, nil)
	if d := (&appsv1.Deployment{}); s.get(baselineName, d) == nil {
		s.t.Fatalf("the baseline Deployment %s exists before any release", baselineName)
	}
}

// releaseAt releases podinfo 6.1.0 whose pods answer in latencyMs.
func (s *scenario) releaseAt(latencyMs int) {
	s.t.Helper()
	s.releaseAnnotated("6.1.0", map[string]string{latencyAnnotation: strconv.Itoa(latencyMs)})
	s.waitProgressing()
}

// observeBaseline waits until the Canary ends in phase want, observing
// the baseline on the way.
func (s *scenario) observeBaseline(want flaggerv1beta1.CanaryPhase) *baselineRun {
	s.t.Helper()
	run := &baselineRun{}
	s.waitPhase(want, 3*time.Minute, func(*flaggerv1beta1.Canary) error { return run.observe(s) })
	s.logf("splits with a baseline share: %v; baseline ready replicas at the first: %d", run.splits, run.readyAtFirstSplit)
	return run
}

// blockBaselinePods runs a pod whose required anti-affinity keeps the
// scheduler from placing any pod labelled app=<target>-baseline on the
// fake nodes (they all carry the topology label), and returns a function
// that deletes it, after which the scheduler places them. The canary's and
// the primary's pods are not affected.
func (s *scenario) blockBaselinePods() (unblock func()) {
	s.t.Helper()
	blocker := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "baseline-blocker", Labels: map[string]string{"app": "baseline-blocker"}},
		Spec: corev1.PodSpec{
			AutomountServiceAccountToken: ptr.To(false),
			Containers:                   []corev1.Container{{Name: "pause", Image: "registry.k8s.io/pause:3.10"}},
			Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
					LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": baselineName}},
					TopologyKey:   cluster.NodeLabel,
				}},
			}},
		},
	}
	s.create(blocker)
	s.eventually(time.Minute, "the blocker pod running", func() (bool, error) {
		p := &corev1.Pod{}
		err := s.get(blocker.Name, p)
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	return func() {
		s.t.Helper()
		if err := s.c.Delete(s.t.Context(), blocker, client.GracePeriodSeconds(0)); err != nil {
			s.t.Fatalf("deleting the blocker pod: %v", err)
		}
		s.logf("deleted the pod that kept the baseline's pods from being scheduled")
	}
}

// expectWaitForBaseline checks, while the baseline's pods cannot be
// scheduled, that Sluice says it waits for the baseline and that the
// VirtualService gives neither the canary nor the baseline a share for
// hold after it said so, though the canary is ready.
func (s *scenario) expectWaitForBaseline(hold time.Duration) {
	s.t.Helper()
	var since time.Time
	s.eventually(time.Minute+hold, "Sluice waiting for the baseline for "+hold.String(), func() (bool, error) {
		if w, err := s.vsWeights(); err == nil && (w.canary > 0 || w.baseline > 0) {
			return false, fmt.Errorf("%w: the VirtualService gives the canary %d%% and the baseline %d%% while no pod of the baseline can be scheduled", errStop, w.canary, w.baseline)
		}
		cd, err := s.canary()
		if err != nil {
			return false, err
		}
		if msg := promotedMessage(cd); since.IsZero() && strings.Contains(msg, "Waiting for the baseline") {
			since = time.Now()
			s.logf("Sluice: %s", msg)
		}
		return !since.IsZero() && time.Since(since) >= hold, nil
	})
	d := &appsv1.Deployment{}
	if err := s.get(baselineName, d); err != nil {
		s.t.Fatalf("reading the baseline Deployment while Sluice waits for it: %v", err)
	}
	if d.Status.ReadyReplicas != 0 {
		s.t.Fatalf("the baseline has %d ready replicas while its pods cannot be scheduled", d.Status.ReadyReplicas)
	}
	// The canary is ready: the baseline alone holds the first step.
	if err := s.get(app, d); err != nil {
		s.t.Fatalf("reading the canary Deployment: %v", err)
	}
	if d.Status.ReadyReplicas == 0 {
		s.t.Fatalf("the canary has no ready replica while Sluice waits for the baseline: want the baseline alone to hold the step")
	}
}

// expectThreeWaySplits checks that the baseline had a share, always the
// canary's, out of the primary's, and was ready for its first.
func (s *scenario) expectThreeWaySplits(run *baselineRun) {
	s.t.Helper()
	if len(run.splits) == 0 {
		s.t.Fatal("the VirtualService never gave the baseline a share")
	}
	for _, w := range run.splits {
		if w.baseline != w.canary || w.primary != 100-2*w.canary {
			s.t.Errorf("VirtualService split primary %d, canary %d, baseline %d: want the baseline at the canary's weight, out of the primary's share", w.primary, w.canary, w.baseline)
		}
	}
	if run.readyAtFirstSplit == 0 {
		s.t.Errorf("the baseline Deployment had no ready replica when the VirtualService first gave it a share")
	}
	// A request routed to the baseline before a pod of it was ready fails
	// with 503 (UH) in the simulated mesh, as in Envoy.
	if n := s.simRequests(map[string]string{"reporter": "source", "destination_service_name": baselineName, "response_code": "503"}); n != 0 {
		s.t.Errorf("%v requests routed to the baseline found no ready pod, want none: the split gave it a share before it was ready", n)
	}
	served := s.simRequests(map[string]string{"reporter": "destination", "destination_workload": baselineName, "response_code": "200"})
	if served == 0 {
		s.t.Errorf("the baseline's pods answered no request, want their share of the load test")
	}
	s.logf("the baseline's pods answered %v requests", served)
}

// expectBaselineGone waits until the baseline Deployment, its Service and
// its pods are deleted, and the VirtualService sends everything to the
// primary.
func (s *scenario) expectBaselineGone() {
	s.t.Helper()
	s.eventually(time.Minute, "the baseline Deployment, Service and pods deleted", func() (bool, error) {
		dGone, err := s.gone(baselineName, &appsv1.Deployment{})
		if err != nil {
			return false, err
		}
		svcGone, err := s.gone(baselineName, &corev1.Service{})
		if err != nil {
			return false, err
		}
		pods := &corev1.PodList{}
		if err := s.c.List(s.t.Context(), pods, client.InNamespace(s.ns), client.MatchingLabels{"app": baselineName}); err != nil {
			return false, err
		}
		return dGone && svcGone && len(pods.Items) == 0, nil
	})
	s.expectAllTrafficToPrimary()
}

// comparisons returns the results of the baseline comparison in the
// analysis history.
func comparisons(cd *flaggerv1beta1.Canary) []flaggerv1beta1.CanaryCheckResult {
	var out []flaggerv1beta1.CanaryCheckResult
	for _, r := range cd.Status.Analysis {
		if r.Name == baselineMetric {
			out = append(out, r)
		}
	}
	return out
}

// TestIstio_BaselineComparisonRollsBackASlowerRelease: a release whose
// pods answer in 1.5 times the primary's latency runs beside a fresh
// baseline of the primary at the canary's weight; the comparison with the
// baseline's latency finds it High and rolls it back, while the fixed
// 2 s threshold on the P99 passes it at every step. While the
// scheduler cannot place the baseline's pods, no step runs though the
// canary is ready; the baseline is deleted, pods included, at the end.
func TestIstio_BaselineComparisonRollsBackASlowerRelease(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	s.initializeBaseline()
	unblock := s.blockBaselinePods()
	s.releaseAt(baseLatency * 3 / 2)
	// The canary becomes ready long before the baseline: no step runs
	// until the baseline is ready too.
	s.expectWaitForBaseline(12 * time.Second)
	unblock()
	run := s.observeBaseline(flaggerv1beta1.CanaryPhaseFailed)
	s.expectThreeWaySplits(run)
	if got := s.primaryImage(); got != image+"6.0.0" {
		t.Errorf("primary image = %s, want it untouched: %s6.0.0", got, image)
	}

	cd, err := s.canary()
	if err != nil {
		t.Fatal(err)
	}
	var high *flaggerv1beta1.CanaryCheckResult
	for _, r := range comparisons(cd) {
		if c := r.Comparison; !r.Passed && c != nil && c.Verdict == "High" && c.Against == flaggerv1beta1.CompareAgainstBaseline {
			high = &r
		}
	}
	if high == nil {
		t.Fatalf("no failed %s result with verdict High against the baseline in the analysis history: %+v", baselineMetric, comparisons(cd))
	}
	c := high.Comparison
	s.logf("%s: %s", baselineMetric, high.Message)
	canaryMean, baselineMean := ptr.Deref(c.Canary.Mean, 0), ptr.Deref(c.Baseline.Mean, 0)
	if effect := ptr.Deref(c.Effect, 0); effect < 1.2 || canaryMean <= baselineMean {
		t.Errorf("High verdict with effect %v, canary mean %v ms, baseline mean %v ms: want the canary's mean latency at least 1.2x the baseline's", effect, canaryMean, baselineMean)
	}
	if n, m := ptr.Deref(c.Canary.Count, 0), ptr.Deref(c.Baseline.Count, 0); n < 6 || m < 6 {
		t.Errorf("High verdict on %v canary and %v baseline samples, want at least minSamples (6) each", n, m)
	}
	// The fixed threshold alone would have promoted the release.
	checked := 0
	for _, r := range cd.Status.Analysis {
		if r.Name != "request-duration" {
			continue
		}
		checked++
		if !r.Passed {
			t.Errorf("request-duration failed at %s (%s): want the loose fixed threshold to pass the slower canary, so that only the comparison catches it", r.Time, r.Message)
		}
	}
	if checked == 0 {
		t.Error("request-duration was never checked")
	}
	s.expectBaselineGone()
}

// TestIstio_BaselineComparisonPromotesAnEquallyFastRelease: a release as
// fast as the primary passes its comparison with the fresh baseline at
// every step and is promoted; the baseline is deleted afterwards.
func TestIstio_BaselineComparisonPromotesAnEquallyFastRelease(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	s.initializeBaseline()
	s.releaseAt(baseLatency)
	run := s.observeBaseline(flaggerv1beta1.CanaryPhaseSucceeded)
	s.expectThreeWaySplits(run)
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
	cd, err := s.canary()
	if err != nil {
		t.Fatal(err)
	}
	passed := 0
	for _, r := range comparisons(cd) {
		if r.Comparison != nil && r.Comparison.Verdict == "Pass" && r.Passed {
			passed++
		}
	}
	if passed == 0 {
		t.Errorf("no %s result with verdict Pass in the analysis history: %+v", baselineMetric, comparisons(cd))
	}
	if want := (weights{primary: 40, canary: 30, baseline: 30}); !slices.Contains(run.splits, want) {
		t.Errorf("splits with a baseline share %v, want %v among them (the maximum weight)", run.splits, want)
	}
	s.expectBaselineGone()
}

// simRequests sums istio_requests_total on the simulated mesh over the
// series whose labels include want.
func (s *scenario) simRequests(want map[string]string) float64 {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), http.MethodGet, s.sim.MetricsURL, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("scraping the simulated mesh: %v", err)
	}
	defer func() { _ = resp.Body.Close() }()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		s.t.Fatalf("scraping the simulated mesh: %v", err)
	}
	var sum float64
	for _, m := range families["istio_requests_total"].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		match := true
		for k, v := range want {
			match = match && labels[k] == v
		}
		if match {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}
