package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	kedav1alpha1 "github.com/sluicedev/sluice/pkg/apis/keda/v1alpha1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
)

func (h *harness) scaledObject(name string) *kedav1alpha1.ScaledObject {
	h.t.Helper()
	var so kedav1alpha1.ScaledObject
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &so); err != nil {
		h.t.Fatalf("ScaledObject %s: %v", name, err)
	}
	return &so
}

// TestEngine_ScaledObjectIsCopiedForThePrimaryAndPausedWhileParked runs a
// release of a Deployment scaled by KEDA: the primary gets its own
// ScaledObject on its own query, and the target's is paused whenever the
// target is parked, and only then.
func TestEngine_ScaledObjectIsCopiedForThePrimaryAndPausedWhileParked(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	so := &kedav1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: kedav1alpha1.ScaledObjectSpec{
			ScaleTargetRef:  &kedav1alpha1.ScaleTarget{Name: "podinfo"},
			MinReplicaCount: ptr.To[int32](2), MaxReplicaCount: ptr.To[int32](5),
			Triggers: []kedav1alpha1.ScaleTriggers{{Type: "prometheus", Metadata: map[string]string{
				"serverAddress": "http://prometheus:9090", "threshold": "10", "query": `sum(rate(http_requests_total{deployment="podinfo"}[1m]))`,
			}}},
		},
	}
	h.create(newDeployment("podinfo", 2), so, newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "podinfo"}
		cd.Spec.Analysis.Iterations = ptr.To[int32](4)
	}))
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)

	primary := h.scaledObject("podinfo-primary")
	if !metav1.IsControlledBy(primary, cd) || primary.Spec.ScaleTargetRef.Name != "podinfo-primary" ||
		primary.Spec.Triggers[0].Metadata["query"] != `sum(rate(http_requests_total{deployment="podinfo-primary"}[1m]))` {
		t.Errorf("primary ScaledObject = %+v, want one owned by the Canary, scaling podinfo-primary on its own query", primary)
	}
	parked := func() (bool, string) {
		paused := h.scaledObject("podinfo").Annotations[kedav1alpha1.PausedReplicasAnnotation]
		replicas := ptr.Deref(h.deployment("podinfo").Spec.Replicas, -1)
		return paused == "0" && replicas == 0, fmt.Sprintf("paused-replicas %q, target replicas %d", paused, replicas)
	}
	h.eventually("the target parked with its ScaledObject paused", parked)

	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	h.eventually("the ScaledObject resumed and the canary scaled to its minimum during the analysis", func() (bool, string) {
		phase := h.canary("podinfo").Status.Phase
		if phase == flaggerv1beta1.CanaryPhaseSucceeded {
			t.Fatal("the release succeeded without the canary's ScaledObject resumed")
		}
		_, paused := h.scaledObject("podinfo").Annotations[kedav1alpha1.PausedReplicasAnnotation]
		replicas := ptr.Deref(h.deployment("podinfo").Spec.Replicas, -1)
		return phase == flaggerv1beta1.CanaryPhaseProgressing && !paused && replicas == 2,
			fmt.Sprintf("phase %s, paused %t, target replicas %d", phase, paused, replicas)
	})
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	h.eventually("the target parked again", parked)
	if img := h.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/example/podinfo:6.1.0" {
		t.Errorf("primary image = %s, want the new revision", img)
	}
	if _, paused := h.scaledObject("podinfo-primary").Annotations[kedav1alpha1.PausedReplicasAnnotation]; paused {
		t.Error("the primary's ScaledObject is paused, want it scaling")
	}
}

// TestEngine_KnativeServicePromotesTheLatestRevision runs a release of a
// Knative Service (provider knative), with the test playing Knative's
// controller: no primary workload and no Services are created, and
// Knative's own Service named after the Knative Service is left alone.
func TestEngine_KnativeServicePromotesTheLatestRevision(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	ksvc := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": "podinfo"},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"image": "ghcr.io/stefanprodan/podinfo:6.0.0"},
		}}}},
	}}
	// Knative's own Service of the same name, which Sluice must not take.
	knativeOwn := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "podinfo"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "kourier.kourier-system.svc.cluster.local"}}
	h.create(ksvc, knativeOwn)
	h.knativeCreates("podinfo-00001")
	h.create(newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderKnative
		cd.Spec.TargetRef = flaggerv1beta1.LocalObjectReference{APIVersion: "serving.knative.dev/v1", Kind: "Service", Name: "podinfo"}
		cd.Spec.Analysis.Iterations, cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = nil, ptr.To[int32](50), ptr.To[int32](50)
	}))
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	if cd.Status.LastAppliedSpec != "podinfo-00001" {
		t.Errorf("lastAppliedSpec = %q, want the revision podinfo-00001", cd.Status.LastAppliedSpec)
	}
	h.eventually("all traffic on the primary revision", func() (bool, string) {
		traffic := h.knativeTraffic()
		return traffic == "latest:0 podinfo-00001:100", traffic
	})

	h.knativeCreates("podinfo-00002")
	h.eventually("half the traffic on the new revision", func() (bool, string) {
		traffic := h.knativeTraffic()
		cd := h.canary("podinfo")
		return traffic == "latest:50 podinfo-00001:50", fmt.Sprintf("%s; phase %s, weight %d, conditions %+v, events %v", traffic, cd.Status.Phase, cd.Status.CanaryWeight, cd.Status.Conditions, h.events("podinfo"))
	})
	cd = h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	if cd.Status.LastPromotedSpec != "podinfo-00002" {
		t.Errorf("lastPromotedSpec = %q, want podinfo-00002", cd.Status.LastPromotedSpec)
	}
	h.eventually("all traffic on the promoted revision", func() (bool, string) {
		traffic := h.knativeTraffic()
		return traffic == "latest:0 podinfo-00002:100", traffic
	})

	var services corev1.ServiceList
	if err := h.c.List(context.Background(), &services, client.InNamespace(h.ns)); err != nil {
		t.Fatal(err)
	}
	if len(services.Items) != 1 || services.Items[0].Spec.ExternalName != knativeOwn.Spec.ExternalName || len(services.Items[0].OwnerReferences) != 0 {
		t.Errorf("Services = %+v, want only Knative's, untouched", services.Items)
	}
	for _, c := range cd.Status.Conditions {
		if c.Type == flaggerv1beta1.ValidType && c.Status != corev1.ConditionTrue {
			t.Errorf("Valid = %s %s: %s, want True", c.Status, c.Reason, c.Message)
		}
	}
}

// knativeCreates plays Knative's controller: a ready revision becomes the
// latest created one of the Knative Service podinfo.
func (h *harness) knativeCreates(revision string) {
	h.t.Helper()
	ctx := context.Background()
	rev := &knativev1.Revision{ObjectMeta: metav1.ObjectMeta{Name: revision, Namespace: h.ns}}
	if err := h.c.Create(ctx, rev); err != nil {
		h.t.Fatal(err)
	}
	rev.Status.Conditions = []knativev1.Condition{{Type: "Ready", Status: "True"}}
	if err := h.c.Status().Update(ctx, rev); err != nil {
		h.t.Fatal(err)
	}
	svc := &knativev1.Service{}
	if err := h.c.Get(ctx, client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, svc); err != nil {
		h.t.Fatal(err)
	}
	svc.Status.ObservedGeneration, svc.Status.LatestCreatedRevisionName = svc.Generation, revision
	if err := h.c.Status().Update(ctx, svc); err != nil {
		h.t.Fatal(err)
	}
}

// knativeTraffic renders the Knative Service's spec.traffic as
// "latest:<percent> <revision>:<percent>".
func (h *harness) knativeTraffic() string {
	svc := &knativev1.Service{}
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo"}, svc); err != nil {
		return err.Error()
	}
	var parts []string
	for _, t := range svc.Spec.Traffic {
		name := t.RevisionName
		if ptr.Deref(t.LatestRevision, false) {
			name = "latest"
		}
		parts = append(parts, fmt.Sprintf("%s:%d", name, ptr.Deref(t.Percent, -1)))
	}
	return strings.Join(parts, " ")
}

// TestEngine_ServiceTargetSplitsBetweenItsCopies runs a release of a
// Kubernetes Service target on Istio: the Service is copied to
// podinfo-primary and podinfo-canary, the VirtualService splits between
// the copies, and the promotion copies the new spec into the primary. No
// workload is created and the target Service is not changed.
func TestEngine_ServiceTargetSplitsBetweenItsCopies(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	target := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "podinfo"},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 9898, TargetPort: intstr.FromInt32(9898)}},
		},
	}
	h.create(target, newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider = flaggerv1beta1.ProviderIstio
		cd.Spec.TargetRef = flaggerv1beta1.LocalObjectReference{APIVersion: "v1", Kind: "Service", Name: "podinfo"}
		cd.Spec.Analysis.Iterations, cd.Spec.Analysis.StepWeight, cd.Spec.Analysis.MaxWeight = nil, ptr.To[int32](50), ptr.To[int32](50)
	}))
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	for _, name := range []string{"podinfo-primary", "podinfo-canary"} {
		if s := h.service(name); !metav1.IsControlledBy(s, cd) || s.Spec.Selector["app"] != "podinfo" {
			t.Errorf("Service %s selects %v, controller %v; want a copy of the target owned by the Canary", name, s.Spec.Selector, metav1.GetControllerOf(s))
		}
	}
	h.eventually("the VirtualService on the primary copy", func() (bool, string) {
		w := istioWeight(h)
		return w == 0, fmt.Sprintf("canary weight %d", w)
	})

	patch := client.MergeFrom(target.DeepCopy())
	target.Spec.Selector = map[string]string{"app": "podinfo-v2"}
	if err := h.c.Patch(context.Background(), target, patch); err != nil {
		t.Fatal(err)
	}
	h.eventually("half the traffic on the canary copy, which selects the new pods", func() (bool, string) {
		w := istioWeight(h)
		canarySel, primarySel := h.service("podinfo-canary").Spec.Selector["app"], h.service("podinfo-primary").Spec.Selector["app"]
		return w == 50 && canarySel == "podinfo-v2" && primarySel == "podinfo",
			fmt.Sprintf("canary weight %d, canary copy app=%s, primary copy app=%s", w, canarySel, primarySel)
	})
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	if sel := h.service("podinfo-primary").Spec.Selector["app"]; sel != "podinfo-v2" {
		t.Errorf("primary copy selects app=%s after the promotion, want podinfo-v2", sel)
	}
	h.eventually("all traffic back on the primary copy", func() (bool, string) {
		w := istioWeight(h)
		return w == 0, fmt.Sprintf("canary weight %d", w)
	})
	if s := h.service("podinfo"); len(s.OwnerReferences) != 0 || s.Spec.Selector["app"] != "podinfo-v2" {
		t.Errorf("target Service: owners %v, selector %v; want it as its owner left it", s.OwnerReferences, s.Spec.Selector)
	}
}
