package controller

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

// TestEngine_RealPrometheusDrivesRollbackAndPromotion runs the analysis on
// the builtin Istio success-rate query, answered by a real Prometheus that
// scrapes Istio-shaped request counters: a canary answering 30% errors is
// rolled back, a healthy one promoted.
func TestEngine_RealPrometheusDrivesRollbackAndPromotion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	set := func(errorsPerTick uint64) {
		traffic.Set(istio, istio.Labels(h.ns, "podinfo"),
			promtest.Series{Code: istio.OK, Fast: 10 - errorsPerTick}, promtest.Series{Code: istio.Error, Fast: errorsPerTick})
	}
	cd := newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		cd.Spec.Analysis.Iterations = nil
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](50), ptr.To[int32](50)
		cd.Spec.Analysis.Metrics = []flaggerv1beta1.CanaryMetric{{
			Name: metrics.BuiltinRequestSuccessRate, Interval: "5s", ThresholdRange: &flaggerv1beta1.CanaryThresholdRange{Min: ptr.To(99.0)},
		}}
	})
	set(3)
	h.create(newDeployment("podinfo", 1), cd)
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	if err := prom.WaitForScrapes(ctx, 3); err != nil {
		t.Fatal(err)
	}

	h.setImage("podinfo", "ghcr.io/example/podinfo:bad")
	failed := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)
	var values []string
	for _, r := range failed.Status.Analysis {
		if r.Name == metrics.BuiltinRequestSuccessRate && r.Value != nil {
			values = append(values, fmt.Sprintf("%.1f", *r.Value))
			if *r.Value < 65 || *r.Value > 75 {
				t.Errorf("success rate %.2f, want about 70 (30%% errors)", *r.Value)
			}
		}
	}
	if len(values) == 0 {
		t.Fatalf("no success rate recorded: %+v", failed.Status.Analysis)
	}

	// Once Prometheus sees the healthy rate, a fixed revision is promoted.
	set(0)
	probe := h.canary("podinfo")
	h.eventually("Prometheus to report a 100% success rate", func() (bool, string) {
		r := analyzer.Analyze(ctx, probe)
		return len(r) == 1 && r[0].Passed, fmt.Sprintf("%+v", r)
	})
	h.setImage("podinfo", "ghcr.io/example/podinfo:fixed")
	done := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	last := done.Status.Analysis[len(done.Status.Analysis)-1]
	if !last.Passed || last.Value == nil || *last.Value < 99 {
		t.Errorf("last check %+v, want a passing success rate", last)
	}
	t.Logf("success rates while failing: %s", strings.Join(values, ", "))
}
