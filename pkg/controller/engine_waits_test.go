package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
)

func (h *harness) annotate(name, key, value string) {
	h.t.Helper()
	d := h.deployment(name)
	patch := client.MergeFrom(d.DeepCopy())
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[key] = value
	if err := h.c.Patch(context.Background(), d, patch); err != nil {
		h.t.Fatal(err)
	}
}

func TestEngine_CanaryPodsNeverReadyRollBackAtTheDeadline(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 2), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](2)
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.annotate("podinfo", unready, "true")
	h.setImage("podinfo", "ghcr.io/example/podinfo:crashloop")
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)
	if c := findPromoted(cd); c == nil || !strings.Contains(c.Message, "canary is not ready after 2s") {
		t.Errorf("Promoted condition = %+v, want the deadline named", c)
	}
	if img := h.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/example/podinfo:6.0.0" {
		t.Errorf("primary image = %s, want the old one", img)
	}
}

func TestEngine_StuckPromotionFailsAndKeepsTrafficOnTheCanary(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 2), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		cd.Spec.Analysis.Iterations = nil
		cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = ptr.To[int32](50), ptr.To[int32](50)
		cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](2)
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	// The new revision runs fine as the canary and never becomes ready as
	// the primary.
	d := h.deployment("podinfo")
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Template.Annotations = map[string]string{unreadyAsPrimary: "true"}
	d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/example/podinfo:6.1.0"
	if err := h.c.Patch(context.Background(), d, patch); err != nil {
		t.Fatal(err)
	}
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)
	if c := findPromoted(cd); c == nil || !strings.Contains(c.Message, "Promotion of podinfo failed") {
		t.Errorf("Promoted condition = %+v", c)
	}
	h.eventually("all traffic on the canary, which passed the analysis", func() (bool, string) {
		w := istioWeight(h)
		return w == 100, fmt.Sprintf("canary weight %d", w)
	})
	if n := ptr.Deref(h.deployment("podinfo").Spec.Replicas, 0); n == 0 {
		t.Errorf("the canary serving all traffic was scaled to zero")
	}
}

func TestEngine_UnreadyPrimaryHaltsTheAnalysisAndFailsAtTheDeadline(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 2), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](3)
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.annotate("podinfo-primary", unready, "true")
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)
	if c := findPromoted(cd); c == nil || !strings.Contains(c.Message, "the primary is not ready after 3s") {
		t.Errorf("Promoted condition = %+v, want the unready primary named", c)
	}
	for _, c := range cd.Status.Analysis {
		t.Errorf("a step ran while the primary was not ready: %+v", c)
	}
	if img := h.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/example/podinfo:6.0.0" {
		t.Errorf("primary image = %s, want the old one", img)
	}
}

func TestEngine_PromotionScalesThePrimaryToTheCanaryLoadFirst(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    ptr.To[int32](1), MaxReplicas: 10,
		},
	}
	h.create(newDeployment("podinfo", 1), hpa, newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "podinfo"}
		cd.Spec.Analysis.Iterations = ptr.To[int32](4)
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseProgressing)
	// The canary's autoscaler scales it to 6 under load during the analysis.
	d := h.deployment("podinfo")
	patch := client.MergeFrom(d.DeepCopy())
	d.Spec.Replicas = ptr.To[int32](6)
	if err := h.c.Patch(context.Background(), d, patch); err != nil {
		t.Fatal(err)
	}
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	if n := ptr.Deref(h.deployment("podinfo-primary").Spec.Replicas, 0); n < 6 {
		t.Errorf("primary replicas = %d after promotion, want at least the canary's 6", n)
	}
	// Once the primary carries the traffic, its autoscaler gets the user's
	// bounds back and scales from the real load.
	// (The status is written before the actions it decides: write-ahead.)
	h.eventually("the primary HPA's minimum given back", func() (bool, string) {
		var primaryHPA autoscalingv2.HorizontalPodAutoscaler
		if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-primary"}, &primaryHPA); err != nil {
			return false, err.Error()
		}
		got := ptr.Deref(primaryHPA.Spec.MinReplicas, 0)
		return got == 1, fmt.Sprintf("primary HPA minReplicas = %d after promotion, want the target's 1", got)
	})
}

func TestEngine_ConcurrencyCapQueuesAnalysesInArrivalOrder(t *testing.T) {
	h := newHarness(t, func(r *CanaryReconciler) { r.MaxConcurrentCanaries = 1 })
	h.metrics.set(0)
	for _, name := range []string{"one", "two"} {
		h.create(newDeployment(name, 1), newCanary(name, func(cd *flaggerv1beta1.Canary) { cd.Spec.Analysis.Iterations = ptr.To[int32](3) }))
	}
	h.waitPhase("one", flaggerv1beta1.CanaryPhaseInitialized)
	h.waitPhase("two", flaggerv1beta1.CanaryPhaseInitialized)

	h.setImage("one", "ghcr.io/example/podinfo:6.1.0")
	h.waitPhase("one", flaggerv1beta1.CanaryPhaseProgressing)
	h.setImage("two", "ghcr.io/example/podinfo:6.1.0")
	two := h.waitPhase("two", flaggerv1beta1.CanaryPhaseWaiting)
	if c := findPromoted(two); c == nil || !strings.Contains(c.Message, "-max-concurrent-canaries") {
		t.Errorf("waiting Canary's condition = %+v, want the cap named", c)
	}
	// While one analyses, two never runs; then it gets the slot.
	h.eventually("one to finish while two waits", func() (bool, string) {
		one, two := h.canary("one"), h.canary("two")
		if statemachine.Running(two.Status.Phase) && statemachine.Running(one.Status.Phase) {
			t.Fatalf("both Canaries analyse at once despite a cap of 1")
		}
		return one.Status.Phase == flaggerv1beta1.CanaryPhaseSucceeded, fmt.Sprintf("one %s, two %s", one.Status.Phase, two.Status.Phase)
	})
	h.waitPhase("two", flaggerv1beta1.CanaryPhaseSucceeded)
}

func TestEngine_RestartResumesFromStatusWithoutRestartingOrPromotingTwice(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Interval = "2s"
		cd.Spec.Analysis.Iterations = ptr.To[int32](3)
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	primaryGen := h.deployment("podinfo-primary").Generation
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	var mid *flaggerv1beta1.Canary
	h.eventually("an analysis in its second iteration", func() (bool, string) {
		mid = h.canary("podinfo")
		return mid.Status.Iterations >= 2, fmt.Sprintf("%s iterations %d", mid.Status.Phase, mid.Status.Iterations)
	})
	h.stopManager()
	stopped := h.canary("podinfo")
	h.startManager()

	h.eventually("the analysis to go on", func() (bool, string) {
		cd := h.canary("podinfo")
		if cd.Status.LastAppliedSpec != stopped.Status.LastAppliedSpec || (statemachine.Running(cd.Status.Phase) && cd.Status.Iterations < stopped.Status.Iterations) {
			t.Fatalf("the restarted controller restarted the analysis: %+v", cd.Status)
		}
		return cd.Status.Phase == flaggerv1beta1.CanaryPhaseSucceeded, fmt.Sprintf("%s iterations %d", cd.Status.Phase, cd.Status.Iterations)
	})
	// Promotion changes the primary's pod template once: one new generation.
	if gen := h.deployment("podinfo-primary").Generation; gen != primaryGen+1 {
		t.Errorf("primary generation went from %d to %d, want one promotion", primaryGen, gen)
	}
	var svc corev1.Service
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, &svc); err != nil || svc.Spec.Selector["app"] != "podinfo-primary" {
		t.Errorf("apex Service after promotion: %v %v", svc.Spec.Selector, err)
	}
}
