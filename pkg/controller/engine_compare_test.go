package controller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

// TestEngine_ComparisonRollsBackASlowerCanaryThatThresholdsPass runs an
// analysis whose latency metric compares the canary with the primary, on
// a real Prometheus scraping Istio-shaped histograms. The canary's mean
// latency is 1.5× the primary's (about 60 ms against 40 ms, both moving
// at random): a 100 ms threshold on the same query passes every step, yet
// the comparison rolls the canary back. With the canary's latency back to
// the primary's, the next revision is promoted.
func TestEngine_ComparisonRollsBackASlowerCanaryThatThresholdsPass(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	traffic := promtest.NewTraffic()
	exporter := httptest.NewServer(traffic.Handler())
	defer exporter.Close()
	prom, err := promtest.Start(ctx, map[string]string{"istio": exporter.URL + "/istio"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = prom.Stop() }()

	analyzer := &metrics.Analyzer{Resolver: metrics.NewResolver(env.Client, metrics.ResolverConfig{MetricsServer: prom.URL})}
	h := newHarness(t, func(r *CanaryReconciler) { r.Analyzer = analyzer })
	istio, _ := promtest.MeshByName("istio")

	// 100 requests per 10 ms tick; k of the primary's are slow (200 ms
	// instead of 40 ms), k in [0, 4] at random every half second. A slow
	// canary has 12 + 1.5k slow requests: its mean latency is 1.5 times
	// the primary's at every moment.
	var slowCanary atomic.Bool
	setLatency := func(k uint64) {
		c := k
		if slowCanary.Load() {
			c = 12 + 3*k/2
		}
		traffic.Set(istio, istio.Labels(h.ns, "podinfo"), promtest.Series{Code: istio.OK, Fast: 100 - c, Slow: c})
		traffic.Set(istio, istio.Labels(h.ns, "podinfo-primary"), promtest.Series{Code: istio.OK, Fast: 100 - k, Slow: k})
	}
	slowCanary.Store(true)
	setLatency(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(23, 2))
		tick := time.NewTicker(500 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				setLatency(2 * rng.Uint64N(3))
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	query := `sum(rate(istio_request_duration_milliseconds_sum{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"}[{{ interval }}]))
/ sum(rate(istio_request_duration_milliseconds_count{reporter="destination", destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"}[{{ interval }}]))`
	template := &flaggerv1beta1.MetricTemplate{
		ObjectMeta: metav1.ObjectMeta{Name: "mean-latency"},
		Spec: flaggerv1beta1.MetricTemplateSpec{
			Provider: flaggerv1beta1.MetricTemplateProvider{Type: flaggerv1beta1.MetricProviderPrometheus, Address: prom.URL},
			Query:    query,
		},
	}
	ref := &flaggerv1beta1.CrossNamespaceObjectReference{Name: "mean-latency"}
	cd := newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		cd.Spec.Analysis.Iterations = nil
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](50), ptr.To[int32](50)
		cd.Spec.Analysis.Metrics = []flaggerv1beta1.CanaryMetric{
			{Name: "latency-threshold", Interval: "2s", TemplateRef: ref,
				ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Max: ptr.To(100.0)}},
			{Name: "latency-vs-primary", Interval: "2s", TemplateRef: ref, OnNoData: flaggerv1beta1.NoDataHold,
				Compare: &flaggerv1beta1.CanaryCompare{Direction: flaggerv1beta1.CompareIncrease, MinSamples: ptr.To[int32](5)}},
		}
	})
	h.create(template, newDeployment("podinfo", 1), cd)
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	if err := prom.WaitForScrapes(ctx, 3); err != nil {
		t.Fatal(err)
	}

	h.setImage("podinfo", "ghcr.io/example/podinfo:slow")
	failed := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)
	var thresholdPassed, high int
	for _, r := range failed.Status.Analysis {
		switch r.Name {
		case "latency-threshold":
			if !r.Passed || r.Value == nil || *r.Value > 100 {
				t.Errorf("the loose threshold failed: %+v", r)
			}
			thresholdPassed++
		case "latency-vs-primary":
			if r.Comparison != nil && r.Comparison.Verdict == "High" && !r.Passed {
				high++
				if e := r.Comparison.Effect; e == nil || *e < 1.4 || *e > 1.6 {
					t.Errorf("effect %v, want about 1.5: %s", e, r.Message)
				}
			}
		}
	}
	if thresholdPassed == 0 || high < 2 {
		t.Fatalf("want passing thresholds and two High comparisons before the rollback, got %d and %d: %+v", thresholdPassed, high, failed.Status.Analysis)
	}
	t.Logf("rolled back: %s", lastMessage(failed, "latency-vs-primary"))

	// The fixed revision is as fast as the primary and is promoted.
	slowCanary.Store(false)
	h.setImage("podinfo", "ghcr.io/example/podinfo:fixed")
	done := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	var passed int
	for _, r := range done.Status.Analysis {
		if r.Name == "latency-vs-primary" && r.Comparison != nil && r.Comparison.Verdict == "Pass" && r.Passed &&
			r.Time.After(failed.Status.LastTransitionTime.Time) {
			passed++
		}
	}
	if passed == 0 {
		t.Fatalf("no passing comparison in the promoted analysis: %+v", done.Status.Analysis)
	}
	t.Logf("promoted: %s", lastMessage(done, "latency-vs-primary"))
}

// lastMessage returns the message of the last result of the named check.
func lastMessage(cd *flaggerv1beta1.Canary, name string) string {
	for i := len(cd.Status.Analysis) - 1; i >= 0; i-- {
		if r := cd.Status.Analysis[i]; r.Name == name {
			return fmt.Sprintf("%s (at weight %d)", r.Message, r.CanaryWeight)
		}
	}
	return "none"
}
