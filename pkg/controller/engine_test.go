package controller

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/recorder"
)

const waitLong = 60 * time.Second

func (h *harness) service(name string) *corev1.Service {
	h.t.Helper()
	var s corev1.Service
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: name}, &s); err != nil {
		h.t.Fatalf("service %s: %v", name, err)
	}
	return &s
}

func (h *harness) events(name string) []string {
	var list corev1.EventList
	if err := h.c.List(context.Background(), &list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range list.Items {
		if e.InvolvedObject.Name == name && e.InvolvedObject.Kind == "Canary" {
			out = append(out, e.Reason+": "+e.Message)
		}
	}
	return out
}

func (h *harness) waitEvent(name, substr string) {
	h.t.Helper()
	h.eventually("event "+substr, func() (bool, string) {
		evs := h.events(name)
		for _, e := range evs {
			if strings.Contains(e, substr) {
				return true, ""
			}
		}
		return false, strings.Join(evs, "\n")
	})
}

func TestEngine_BootstrapCreatesPrimaryServicesAndHPAAndParksTheTarget(t *testing.T) {
	h := newHarness(t)
	hpa := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			MinReplicas:    ptr.To[int32](2), MaxReplicas: 4,
		},
	}
	h.create(newDeployment("podinfo", 2), hpa, newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler", Name: "podinfo"}
	}))
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)

	primary := h.deployment("podinfo-primary")
	if primary.Spec.Selector.MatchLabels["app"] != "podinfo-primary" || primary.Spec.Template.Labels["app"] != "podinfo-primary" {
		t.Errorf("primary selector %v, template labels %v", primary.Spec.Selector.MatchLabels, primary.Spec.Template.Labels)
	}
	if !metav1.IsControlledBy(primary, cd) {
		t.Error("the primary is not controlled by the Canary")
	}
	// The status is written before the actions it decides (write-ahead);
	// parking the target is the last of them.
	h.eventually("the target parked", func() (bool, string) {
		got := ptr.Deref(h.deployment("podinfo").Spec.Replicas, -1)
		return got == 0, fmt.Sprintf("target replicas = %d", got)
	})
	for name, sel := range map[string]string{"podinfo": "podinfo-primary", "podinfo-primary": "podinfo-primary", "podinfo-canary": "podinfo"} {
		if s := h.service(name); s.Spec.Selector["app"] != sel || s.Spec.Ports[0].Port != 9898 {
			t.Errorf("service %s selects %v on %v, want app=%s on 9898", name, s.Spec.Selector, s.Spec.Ports, sel)
		}
	}
	var primaryHPA autoscalingv2.HorizontalPodAutoscaler
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-primary"}, &primaryHPA); err != nil {
		t.Fatalf("primary HPA: %v", err)
	}
	if primaryHPA.Spec.ScaleTargetRef.Name != "podinfo-primary" {
		t.Errorf("primary HPA targets %s", primaryHPA.Spec.ScaleTargetRef.Name)
	}
	c := findPromoted(cd)
	if c == nil || c.Status != corev1.ConditionTrue || c.Reason != "Initialized" {
		t.Errorf("Promoted condition = %+v, want True/Initialized", c)
	}
	if cd.Status.LastAppliedSpec == "" || cd.Status.LastAppliedSpec != cd.Status.LastPromotedSpec {
		t.Errorf("lastAppliedSpec %q, lastPromotedSpec %q", cd.Status.LastAppliedSpec, cd.Status.LastPromotedSpec)
	}
	h.waitEvent("podinfo", "Initialization done")
}

func findPromoted(cd *flaggerv1beta1.Canary) *flaggerv1beta1.CanaryCondition {
	for i := range cd.Status.Conditions {
		if cd.Status.Conditions[i].Type == flaggerv1beta1.PromotedType {
			return &cd.Status.Conditions[i]
		}
	}
	return nil
}

func TestEngine_BlueGreenPromotesANewRevision(t *testing.T) {
	reg := prometheus.NewRegistry()
	rec, err := recorder.New(reg, "test", flaggerv1beta1.ProviderKubernetes)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(r *CanaryReconciler) { r.Metrics = rec })
	h.metrics.set(0.2)
	h.create(newDeployment("podinfo", 2), newCanary("podinfo"))
	before := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)

	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseProgressing)
	// As in Flagger, plain Services never send the apex's traffic to the
	// canary: it is tested through podinfo-canary, and the primary's
	// rolling update is the switch.
	var cd *flaggerv1beta1.Canary
	h.eventually("the release to succeed with the apex on the primary throughout", func() (bool, string) {
		if sel := h.service("podinfo").Spec.Selector["app"]; sel != "podinfo-primary" {
			t.Fatalf("apex selects app=%s during the release, want podinfo-primary", sel)
		}
		cd = h.canary("podinfo")
		return cd.Status.Phase == flaggerv1beta1.CanaryPhaseSucceeded, string(cd.Status.Phase)
	})

	if img := h.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/example/podinfo:6.1.0" {
		t.Errorf("primary image = %s, want the new revision", img)
	}
	if sel := h.service("podinfo").Spec.Selector["app"]; sel != "podinfo-primary" {
		t.Errorf("apex selects app=%s after promotion, want podinfo-primary", sel)
	}
	h.eventually("target scaled to zero", func() (bool, string) {
		n := ptr.Deref(h.deployment("podinfo").Spec.Replicas, -1)
		return n == 0, fmt.Sprint(n)
	})
	if cd.Status.LastPromotedSpec == before.Status.LastPromotedSpec || cd.Status.LastPromotedSpec != cd.Status.LastAppliedSpec {
		t.Errorf("lastPromotedSpec %q (was %q), lastAppliedSpec %q", cd.Status.LastPromotedSpec, before.Status.LastPromotedSpec, cd.Status.LastAppliedSpec)
	}
	passed := 0
	for _, c := range cd.Status.Analysis {
		if c.Name == "error-rate" && c.Passed && c.Value != nil && *c.Value == 0.2 {
			passed++
		}
	}
	if passed < 2 {
		t.Errorf("analysis history holds %d passing error-rate checks, want at least 2: %+v", passed, cd.Status.Analysis)
	}
	h.waitEvent("podinfo", "Promotion completed! Scaling down podinfo")

	// Flagger's metrics, as dashboards read them.
	want := `
# HELP flagger_canary_successes_total ` + help(t, reg, "flagger_canary_successes_total") + `
# TYPE flagger_canary_successes_total counter
flagger_canary_successes_total{analysis_status="completed",deployment_strategy="blue-green",name="podinfo",namespace="` + h.ns + `"} 1
# HELP flagger_canary_status ` + help(t, reg, "flagger_canary_status") + `
# TYPE flagger_canary_status gauge
flagger_canary_status{name="podinfo",namespace="` + h.ns + `"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "flagger_canary_successes_total", "flagger_canary_status"); err != nil {
		t.Error(err)
	}
}

// help returns the help text of a metric family, so that the expected
// exposition does not repeat it.
func help(t *testing.T, g prometheus.Gatherer, name string) string {
	t.Helper()
	families, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetHelp()
		}
	}
	t.Fatalf("metric %s is not registered", name)
	return ""
}

func TestEngine_FailingCheckRollsBack(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0.1)
	h.create(newDeployment("podinfo", 2), newCanary("podinfo"))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)

	h.metrics.set(7.5)
	h.setImage("podinfo", "ghcr.io/example/podinfo:bad")
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseFailed)

	if img := h.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/example/podinfo:6.0.0" {
		t.Errorf("primary image = %s, want the old revision", img)
	}
	if sel := h.service("podinfo").Spec.Selector["app"]; sel != "podinfo-primary" {
		t.Errorf("apex selects app=%s after rollback", sel)
	}
	c := findPromoted(cd)
	if c == nil || c.Status != corev1.ConditionFalse || !strings.Contains(c.Message, "failed checks threshold reached 2") {
		t.Errorf("Promoted condition = %+v", c)
	}
	failed := 0
	for _, r := range cd.Status.Analysis {
		if !r.Passed && strings.Contains(r.Message, "7.5 is above the maximum 1") {
			failed++
		}
	}
	if failed != 2 {
		t.Errorf("analysis history holds %d failed checks with the value, want 2: %+v", failed, cd.Status.Analysis)
	}
	h.waitEvent("podinfo", "Canary failed! Scaling down podinfo")

	// A new revision after the failure is analysed again.
	h.metrics.set(0.1)
	h.setImage("podinfo", "ghcr.io/example/podinfo:fixed")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
}

func TestEngine_TrackedConfigMapChangeStartsAnalysisAndUpdatesPrimaryCopy(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config"}, Data: map[string]string{"level": "info"}}
	d := newDeployment("podinfo", 1)
	d.Spec.Template.Spec.Containers[0].EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}}}}
	h.create(cm, d, newCanary("podinfo"))
	before := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	if _, ok := before.Status.TrackedConfigs["configmap/podinfo-config"]; !ok {
		t.Fatalf("trackedConfigs = %v", before.Status.TrackedConfigs)
	}
	ref := h.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].EnvFrom[0].ConfigMapRef.Name
	if ref != "podinfo-config-primary" {
		t.Errorf("primary refers to ConfigMap %s, want podinfo-config-primary", ref)
	}

	cm.Data["level"] = "debug"
	if err := h.c.Update(context.Background(), cm); err != nil {
		t.Fatal(err)
	}
	h.eventually("a new analysis", func() (bool, string) {
		cd := h.canary("podinfo")
		return cd.Status.LastAppliedSpec != before.Status.LastAppliedSpec, string(cd.Status.Phase)
	})
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	var copied corev1.ConfigMap
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-config-primary"}, &copied); err != nil {
		t.Fatal(err)
	}
	if copied.Data["level"] != "debug" {
		t.Errorf("primary ConfigMap data = %v, want level=debug", copied.Data)
	}
}

func TestEngine_RevertOnDeletionRestoresTheTarget(t *testing.T) {
	h := newHarness(t)
	h.create(newDeployment("podinfo", 3), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) { cd.Spec.RevertOnDeletion = true }))
	cd := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	if !strings.Contains(strings.Join(cd.Finalizers, ","), Finalizer) {
		t.Fatalf("finalizers = %v, want %s", cd.Finalizers, Finalizer)
	}
	if err := h.c.Delete(context.Background(), cd); err != nil {
		t.Fatal(err)
	}
	h.eventually("the Canary to be gone", func() (bool, string) {
		err := h.c.Get(context.Background(), client.ObjectKeyFromObject(cd), &flaggerv1beta1.Canary{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
	if n := ptr.Deref(h.deployment("podinfo").Spec.Replicas, -1); n != 3 {
		t.Errorf("target replicas = %d, want 3 (the primary's)", n)
	}
	if sel := h.service("podinfo").Spec.Selector["app"]; sel != "podinfo" {
		t.Errorf("apex selects app=%s, want the target's pods", sel)
	}
}

func TestEngine_InvalidTargetsAreReportedAndNothingIsTouched(t *testing.T) {
	h := newHarness(t)
	h.create(newCanary("missing"))
	h.eventually("a Valid=False condition", func() (bool, string) {
		cd := h.canary("missing")
		for _, c := range cd.Status.Conditions {
			if c.Type == flaggerv1beta1.ValidType && c.Status == corev1.ConditionFalse && c.Reason == "TargetNotFound" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", cd.Status.Conditions)
	})
	h.waitEvent("missing", "not found")

	// A second Canary for the same target is refused; the first proceeds.
	h.create(newDeployment("podinfo", 1), newCanary("podinfo"))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	second := newCanary("podinfo-again", func(cd *flaggerv1beta1.Canary) { cd.Spec.TargetRef.Name = "podinfo" })
	h.create(second)
	h.waitEvent("podinfo-again", "already managed by Canary podinfo")
	if cd := h.canary("podinfo-again"); cd.Status.Phase != "" {
		t.Errorf("the refused Canary reached phase %s", cd.Status.Phase)
	}
	if cd := h.canary("podinfo"); cd.Status.Phase != flaggerv1beta1.CanaryPhaseInitialized {
		t.Errorf("the first Canary moved to phase %s", cd.Status.Phase)
	}
}

func TestEngine_AServiceOwnedBySomeoneElseIsReportedNotTaken(t *testing.T) {
	h := newHarness(t)
	mine := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo"},
		Spec:       corev1.ServiceSpec{Selector: map[string]string{"app": "podinfo"}, Ports: []corev1.ServicePort{{Port: 80}}},
	}
	h.create(mine, newDeployment("podinfo", 1), newCanary("podinfo"))
	h.waitEvent("podinfo", "Service "+h.ns+"/podinfo has no controller")
	cd := h.canary("podinfo")
	for _, c := range cd.Status.Conditions {
		if c.Type == flaggerv1beta1.ValidType && (c.Status != corev1.ConditionFalse || c.Reason != "NotOwned") {
			t.Errorf("Valid condition = %+v, want False/NotOwned", c)
		}
	}
	if s := h.service("podinfo"); s.Spec.Selector["app"] != "podinfo" || s.Spec.Ports[0].Port != 80 {
		t.Errorf("the user's Service was changed: %+v", s.Spec)
	}
}

func TestReconcile_SuspendedCanaryIsLeftAlone(t *testing.T) {
	h := newHarness(t)
	h.stopManager() // reconcile by hand
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) { cd.Spec.Suspend = true }))
	r := &CanaryReconciler{Client: env.Client, Scheme: env.Scheme, APIReader: env.Client, MeshProvider: flaggerv1beta1.ProviderKubernetes}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: h.ns, Name: "podinfo"}})
	if err != nil || res.RequeueAfter != 0 {
		t.Fatalf("Reconcile = %+v, %v", res, err)
	}
	if cd := h.canary("podinfo"); cd.Status.Phase != "" || len(cd.Status.Conditions) != 0 {
		t.Errorf("a suspended Canary got status %+v", cd.Status)
	}
	err = h.c.Get(context.Background(), client.ObjectKey{Namespace: h.ns, Name: "podinfo-primary"}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("a suspended Canary created its primary (err %v)", err)
	}
}

func TestReconcile_MissingCanaryNeedsNothing(t *testing.T) {
	r := &CanaryReconciler{Client: env.Client, Scheme: env.Scheme}
	res, err := r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: "default", Name: "gone"}})
	if err != nil || res != (ctrl.Result{}) {
		t.Fatalf("Reconcile = %+v, %v; want an empty result and no error", res, err)
	}
}

func TestEngine_CrossNamespaceReferencesAreRefusedWhenForbidden(t *testing.T) {
	h := newHarness(t, func(r *CanaryReconciler) { r.NoCrossNamespaceRefs = true })
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Metrics = []flaggerv1beta1.CanaryMetric{{Name: "errors", TemplateRef: &flaggerv1beta1.CrossNamespaceObjectReference{Name: "errors", Namespace: "monitoring"}}}
	}))
	h.waitEvent("podinfo", "-no-cross-namespace-refs forbids")
	if cd := h.canary("podinfo"); cd.Status.Phase != "" {
		t.Errorf("phase = %s, want nothing started", cd.Status.Phase)
	}
}

func TestReconcile_TransientAPIErrorIsRetriedNotReadAsAChange(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo"))
	before := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.stopManager()

	// The API server times out on ConfigMap, Secret and HPA reads, as
	// during an etcd leader change.
	base, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	failing := interceptor.NewClient(base, interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
		if _, ok := obj.(*flaggerv1beta1.Canary); ok {
			return c.Get(ctx, key, obj, opts...)
		}
		return apierrors.NewTimeoutError("etcd leader changed", 1)
	}})
	r := &CanaryReconciler{
		Client: failing, Scheme: env.Scheme, APIReader: failing, MeshProvider: flaggerv1beta1.ProviderKubernetes,
		Workloads: canary.Config{SelectorLabels: []string{"app"}, ConfigTracking: true},
	}
	_, err = r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(before)})
	if !apierrors.IsTimeout(err) {
		t.Fatalf("Reconcile error = %v, want the timeout returned for retry", err)
	}
	after := h.canary("podinfo")
	if after.Status.Phase != before.Status.Phase || after.Status.LastAppliedSpec != before.Status.LastAppliedSpec || after.ResourceVersion != before.ResourceVersion {
		t.Errorf("a transient error changed the Canary: phase %s→%s, revision %s→%s", before.Status.Phase, after.Status.Phase,
			before.Status.LastAppliedSpec, after.Status.LastAppliedSpec)
	}
}

func TestEngine_AnUnreachableMetricsProviderHoldsTheCanaryUntilItAnswers(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.metrics.setOffline(true)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo"))
	h.eventually("a Valid=False condition naming the metric", func() (bool, string) {
		cd := h.canary("podinfo")
		for _, c := range cd.Status.Conditions {
			if c.Type == flaggerv1beta1.ValidType && c.Reason == "MetricUnavailable" && strings.Contains(c.Message, "metric error-rate") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%+v", cd.Status.Conditions)
	})
	if cd := h.canary("podinfo"); cd.Status.Phase != "" {
		t.Errorf("phase = %s, want nothing started while the metrics cannot be read", cd.Status.Phase)
	}
	h.metrics.setOffline(false)
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
}
