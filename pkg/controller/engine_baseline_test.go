package controller

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
	"github.com/sluicedev/sluice/pkg/problem"
)

// TestEngine_BaselineRunsBesideTheCanaryAndIsWhatItIsComparedWith runs a
// canary release with analysis.baseline on Istio, with a latency metric
// compared against the baseline, on a real Prometheus scraping
// Istio-shaped histograms. The primary is as slow as the slow canary (as
// a long-running deployment under other load can be), so a comparison
// with the primary would pass it; the fresh baseline is 1.5 times faster,
// and the comparison against it rolls the canary back. At the start of
// the analysis the baseline Deployment appears with the primary's pod
// template, and the VirtualService splits the traffic three ways; after
// the rollback, and after the promotion of a revision as fast as the
// baseline, the baseline and its Service are gone.
func TestEngine_BaselineRunsBesideTheCanaryAndIsWhatItIsComparedWith(t *testing.T) {
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

	// 100 requests per 10 ms tick; k of the baseline's are slow (200 ms
	// instead of 40 ms), k in [0, 4] at random every half second. A slow
	// canary, and the primary, have 12 + 1.5k slow requests: a mean
	// latency 1.5 times the baseline's. A fast canary has the baseline's.
	var slowCanary atomic.Bool
	setLatency := func(k uint64) {
		slow := 12 + 3*k/2
		c := k
		if slowCanary.Load() {
			c = slow
		}
		traffic.Set(istio, istio.Labels(h.ns, "podinfo"), promtest.Series{Code: istio.OK, Fast: 100 - c, Slow: c})
		traffic.Set(istio, istio.Labels(h.ns, "podinfo-primary"), promtest.Series{Code: istio.OK, Fast: 100 - slow, Slow: slow})
		traffic.Set(istio, istio.Labels(h.ns, "podinfo-baseline"), promtest.Series{Code: istio.OK, Fast: 100 - k, Slow: k})
	}
	slowCanary.Store(true)
	setLatency(0)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(23, 4))
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
	cd := newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		a := cd.Spec.Analysis
		a.Iterations, a.Baseline = nil, true
		a.StepWeight, a.MaxWeight = ptr.To[int32](25), ptr.To[int32](50)
		a.Metrics = []flaggerv1beta1.CanaryMetric{{
			Name: "latency-vs-baseline", Interval: "2s", TemplateRef: &flaggerv1beta1.CrossNamespaceObjectReference{Name: "mean-latency"},
			OnNoData: flaggerv1beta1.NoDataHold,
			Compare: &flaggerv1beta1.CanaryCompare{Against: flaggerv1beta1.CompareAgainstBaseline, Direction: flaggerv1beta1.CompareIncrease,
				MinSamples: ptr.To[int32](5)},
		}}
	})
	h.create(template, newDeployment("podinfo", 2), cd)
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	if h.exists("podinfo-baseline", &appsv1.Deployment{}) || h.exists("podinfo-baseline", &corev1.Service{}) {
		t.Fatal("a baseline exists before any analysis")
	}
	if err := prom.WaitForScrapes(ctx, 3); err != nil {
		t.Fatal(err)
	}

	// The analysis starts with a copy of the primary beside the canary.
	h.setImage("podinfo", "ghcr.io/example/podinfo:slow")
	h.checkBaselineStarts("ghcr.io/example/podinfo:slow")
	failed := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)
	high := 0
	for _, r := range failed.Status.Analysis {
		if c := r.Comparison; r.Name == "latency-vs-baseline" && c != nil && c.Verdict == "High" && !r.Passed {
			high++
			if c.Against != flaggerv1beta1.CompareAgainstBaseline || !strings.HasPrefix(r.Message, "High against the baseline") {
				t.Errorf("comparison against %q: %s", c.Against, r.Message)
			}
			if e := c.Effect; e == nil || *e < 1.4 || *e > 1.6 {
				t.Errorf("effect %v, want about 1.5 (the primary, as slow as the canary, would give 1): %s", e, r.Message)
			}
		}
	}
	if high < 2 {
		t.Fatalf("want two High comparisons against the baseline before the rollback, got %d: %+v", high, failed.Status.Analysis)
	}
	t.Logf("rolled back: %s", lastMessage(failed, "latency-vs-baseline"))
	h.checkBaselineGone("after the rollback")

	// A revision as fast as the baseline is promoted, and its baseline goes too.
	slowCanary.Store(false)
	h.setImage("podinfo", "ghcr.io/example/podinfo:fixed")
	h.checkBaselineStarts("ghcr.io/example/podinfo:fixed")
	done := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	passed := 0
	for _, r := range done.Status.Analysis {
		if c := r.Comparison; r.Name == "latency-vs-baseline" && c != nil && c.Verdict == "Pass" && r.Passed && r.Time.After(failed.Status.LastTransitionTime.Time) {
			passed++
		}
	}
	if passed == 0 {
		t.Fatalf("no passing comparison in the promoted analysis: %+v", done.Status.Analysis)
	}
	t.Logf("promoted: %s", lastMessage(done, "latency-vs-baseline"))
	h.checkBaselineGone("after the promotion")
}

// checkBaselineStarts waits for the baseline of an analysis to start: the
// Deployment podinfo-baseline with the primary's pod template (not the
// canary's image) under its own selector, the canary's replica count and
// the Canary as owner; its Service and DestinationRule; and a VirtualService
// that sends the baseline as much as the canary, out of the primary's share.
func (h *harness) checkBaselineStarts(canaryImage string) {
	h.t.Helper()
	var b appsv1.Deployment
	h.eventually("the baseline Deployment", func() (bool, string) {
		err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-baseline"}, &b)
		return err == nil, fmt.Sprint(err)
	})
	primary, cd := h.deployment("podinfo-primary"), h.canary("podinfo")
	tmpl := b.Spec.Template
	switch image := tmpl.Spec.Containers[0].Image; {
	case image == canaryImage || image != primary.Spec.Template.Spec.Containers[0].Image:
		h.t.Errorf("the baseline runs %s, want the primary's %s (the canary runs %s)", image, primary.Spec.Template.Spec.Containers[0].Image, canaryImage)
	case b.Spec.Selector.MatchLabels["app"] != "podinfo-baseline" || tmpl.Labels["app"] != "podinfo-baseline":
		h.t.Errorf("the baseline selects %v and labels its pods %v, want app=podinfo-baseline", b.Spec.Selector.MatchLabels, tmpl.Labels)
	case ptr.Deref(b.Spec.Replicas, 0) != 2:
		h.t.Errorf("the baseline has %d replicas, want the canary's 2", ptr.Deref(b.Spec.Replicas, 0))
	case tmpl.Annotations[canary.BaselineRevisionAnnotation] != cd.Status.LastAppliedSpec:
		h.t.Errorf("the baseline runs beside revision %q, want the analysed %q", tmpl.Annotations[canary.BaselineRevisionAnnotation], cd.Status.LastAppliedSpec)
	}
	if ref := metav1.GetControllerOf(&b); ref == nil || ref.UID != cd.UID {
		h.t.Errorf("the baseline's controller is %+v, want the Canary", ref)
	}
	h.eventually("the baseline Service and DestinationRule", func() (bool, string) {
		var svc corev1.Service
		err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-baseline"}, &svc)
		if err != nil || svc.Spec.Selector["app"] != "podinfo-baseline" {
			return false, fmt.Sprintf("Service %v %v", svc.Spec.Selector, err)
		}
		return h.exists("podinfo-baseline", &networkingv1.DestinationRule{}), "no DestinationRule podinfo-baseline"
	})
	h.eventually("a three-way split in the VirtualService", func() (bool, string) {
		route := h.virtualService().Spec.Http
		if len(route) == 0 {
			return false, "no HTTP route"
		}
		weights := map[string]int32{}
		for _, d := range route[len(route)-1].Route {
			weights[d.GetDestination().GetHost()] = d.Weight
		}
		w := weights["podinfo-canary"]
		return len(weights) == 3 && w > 0 && weights["podinfo-baseline"] == w && weights["podinfo-primary"] == 100-2*w, fmt.Sprint(weights)
	})
}

// checkBaselineGone checks that the release left no baseline behind, and
// that the VirtualService sends everything to the primary.
func (h *harness) checkBaselineGone(when string) {
	h.t.Helper()
	h.eventually("the baseline to go "+when, func() (bool, string) {
		d, s := h.exists("podinfo-baseline", &appsv1.Deployment{}), h.exists("podinfo-baseline", &corev1.Service{})
		return !d && !s, fmt.Sprintf("Deployment there: %t, Service there: %t", d, s)
	})
	route := h.virtualService().Spec.Http
	if dests := route[len(route)-1].Route; len(dests) != 2 || dests[0].GetDestination().GetHost() != "podinfo-primary" || dests[0].Weight != 100 {
		h.t.Errorf("%s the VirtualService routes to %v, want all to the primary", when, dests)
	}
}

// exists reports whether the object of obj's kind named name exists.
func (h *harness) exists(name string, obj client.Object) bool {
	h.t.Helper()
	err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		h.t.Fatalf("reading %T %s: %v", obj, name, err)
	}
	return err == nil
}

// TestEngine_ABaselineSluiceCannotRunIsReported: a baseline on a provider
// that cannot route to one, or with a maximum weight the primary could not
// make room for, sets Valid=False with what to change, and nothing starts.
func TestEngine_ABaselineSluiceCannotRunIsReported(t *testing.T) {
	for _, tc := range []struct {
		name, provider string
		maxWeight      int32
		reason         problem.Reason
		says           string
	}{
		{"a provider without baselines", flaggerv1beta1.ProviderLinkerd, 50, problem.UnsupportedRouting,
			"spec.analysis.baseline: provider linkerd cannot send a share of the traffic to a baseline (the istio and gatewayapi providers can)"},
		{"a canary weight above half", flaggerv1beta1.ProviderIstio, 60, problem.InvalidSpec,
			"spec.analysis.baseline: the baseline takes as much traffic as the canary, so the canary can have at most 50%, but maxWeight is 60"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
				cd.Spec.Provider = tc.provider
				a := cd.Spec.Analysis
				a.Iterations, a.Baseline = nil, true
				a.StepWeight, a.MaxWeight = ptr.To[int32](10), ptr.To(tc.maxWeight)
			}))
			h.eventually("the Valid condition", func() (bool, string) {
				for _, c := range h.canary("podinfo").Status.Conditions {
					if c.Type == flaggerv1beta1.ValidType {
						return c.Status == "False" && c.Reason == string(tc.reason) && strings.HasPrefix(c.Message, tc.says), fmt.Sprintf("%+v", c)
					}
				}
				return false, "no Valid condition"
			})
			if h.exists("podinfo-primary", &appsv1.Deployment{}) || h.exists("podinfo-baseline", &appsv1.Deployment{}) {
				t.Error("an invalid Canary started workloads")
			}
		})
	}
}
