package canary_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	kedav1alpha1 "github.com/sluicedev/sluice/pkg/apis/keda/v1alpha1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// scaledObject returns podinfo's ScaledObject, unstructured so that it can
// carry a field Sluice's types lack (spec.futureField), which Sluice must
// leave alone on the target.
func scaledObject(minReplicas, maxReplicas int64) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
		"metadata": map[string]any{
			"name":   "podinfo",
			"labels": map[string]any{"team": "web", "kustomize.toolkit.fluxcd.io/name": "apps"},
			"annotations": map[string]any{
				"scaledobject.keda.sh/transfer-hpa-ownership":      "true",
				"kubectl.kubernetes.io/last-applied-configuration": "{}",
			},
		},
		"spec": map[string]any{
			"scaleTargetRef":  map[string]any{"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo", "envSourceContainerName": "podinfo"},
			"pollingInterval": int64(15),
			"minReplicaCount": minReplicas,
			"maxReplicaCount": maxReplicas,
			"futureField":     "kept",
			"advanced": map[string]any{
				"horizontalPodAutoscalerConfig": map[string]any{"name": "podinfo-hpa"},
			},
			"triggers": []any{
				map[string]any{
					"type": "prometheus", "name": "rps",
					"metadata": map[string]any{
						"serverAddress": "http://prometheus.monitoring:9090",
						"query":         `sum(rate(http_requests_total{app="podinfo"}[1m]))`,
						"threshold":     "100",
					},
					"authenticationRef": map[string]any{"name": "prom-auth"},
				},
			},
		},
	}}
}

// withScaledObject points the Canary at the podinfo ScaledObject.
func withScaledObject(cd *flaggerv1beta1.Canary) {
	cd.Spec.AutoscalerRef = &flaggerv1beta1.AutoscalerReference{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledObject", Name: "podinfo"}
}

func getScaledObject(f *fixture, name string) *kedav1alpha1.ScaledObject {
	f.t.Helper()
	return f.get(name, &kedav1alpha1.ScaledObject{}).(*kedav1alpha1.ScaledObject)
}

func TestEnsurePrimary_CopiesScaledObjectForPrimary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(), scaledObject(2, 6))
	cd := f.canary("Deployment", withScaledObject, func(cd *flaggerv1beta1.Canary) {
		cd.Spec.AutoscalerRef.PrimaryScalerReplicas = &flaggerv1beta1.ScalerReplicas{MinReplicas: ptr.To[int32](3), MaxReplicas: ptr.To[int32](9)}
	})

	f.must(f.workload(cd).EnsurePrimary(f.ctx(), cd))

	so := getScaledObject(f, "podinfo-primary")
	if ref := so.Spec.ScaleTargetRef; ref == nil || *ref != (kedav1alpha1.ScaleTarget{Name: "podinfo-primary", APIVersion: "apps/v1", Kind: "Deployment", EnvSourceContainerName: "podinfo"}) {
		t.Errorf("scaleTargetRef = %+v, want apps/v1 Deployment podinfo-primary with the target's envSourceContainerName", ref)
	}
	if lo, hi := ptr.Deref(so.Spec.MinReplicaCount, 0), ptr.Deref(so.Spec.MaxReplicaCount, 0); lo != 3 || hi != 9 {
		t.Errorf("bounds = %d..%d, want primaryScalerReplicas' 3..9", lo, hi)
	}
	if got := ptr.Deref(so.Spec.PollingInterval, 0); got != 15 {
		t.Errorf("pollingInterval = %d, want the target's 15", got)
	}
	if got := so.Spec.Advanced.HorizontalPodAutoscalerConfig.Name; got != "podinfo-hpa-primary" {
		t.Errorf("HPA name = %q, want podinfo-hpa-primary (KEDA would otherwise give both the same HPA)", got)
	}
	tr := so.Spec.Triggers
	if len(tr) != 1 || tr[0].Metadata["query"] != `sum(rate(http_requests_total{app="podinfo-primary"}[1m]))` ||
		tr[0].Metadata["threshold"] != "100" || tr[0].AuthenticationRef == nil || tr[0].AuthenticationRef.Name != "prom-auth" {
		t.Errorf("triggers = %+v, want the target's with the query on podinfo-primary", tr)
	}
	if so.Labels["team"] != "web" || so.Labels["kustomize.toolkit.fluxcd.io/name"] != "" {
		t.Errorf("labels = %v, want the target's without Flux's", so.Labels)
	}
	if so.Annotations["scaledobject.keda.sh/transfer-hpa-ownership"] != "true" || so.Annotations["kubectl.kubernetes.io/last-applied-configuration"] != "" {
		t.Errorf("annotations = %v, want the target's without kubectl's", so.Annotations)
	}
	assertControlledBy(t, so, cd)
	if got := replicasOf(f, "podinfo-primary"); got != 3 {
		t.Errorf("primary replicas = %d, want the target's 3", got)
	}
}

func TestPromote_UpdatesPrimaryScaledObject(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(), scaledObject(2, 6))
	cd := f.canary("Deployment", withScaledObject)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	update(f, "podinfo", &kedav1alpha1.ScaledObject{}, func(so *kedav1alpha1.ScaledObject) {
		so.Spec.MaxReplicaCount = ptr.To[int32](12)
	})

	f.must(w.EnsurePrimary(f.ctx(), cd))
	if got := ptr.Deref(getScaledObject(f, "podinfo-primary").Spec.MaxReplicaCount, 0); got != 6 {
		t.Errorf("after EnsurePrimary: maxReplicaCount = %d, want 6 until Promote", got)
	}
	f.must(f.promote(w, cd))
	if got := ptr.Deref(getScaledObject(f, "podinfo-primary").Spec.MaxReplicaCount, 0); got != 12 {
		t.Errorf("after Promote: maxReplicaCount = %d, want 12", got)
	}
	f.writes.Store(0)
	f.must(w.SyncAutoscaler(f.ctx(), cd))
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes syncing an unchanged ScaledObject, want none", n)
	}
}

func TestScaleTarget_PausesScaledObjectWhileParked(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(), scaledObject(4, 6))
	cd := f.canary("Deployment", withScaledObject)
	w := f.workload(cd)
	paused := func() (string, bool) {
		v, ok := getScaledObject(f, "podinfo").Annotations[kedav1alpha1.PausedReplicasAnnotation]
		return v, ok
	}

	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	if v, ok := paused(); !ok || v != "0" {
		t.Errorf("parked: %s = %q (set %t), want \"0\"", kedav1alpha1.PausedReplicasAnnotation, v, ok)
	}
	if got := replicasOf(f, "podinfo"); got != 0 {
		t.Errorf("parked: replicas = %d, want 0", got)
	}
	f.writes.Store(0)
	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes parking a parked target, want none", n)
	}

	f.must(w.ScaleTargetUp(f.ctx(), cd))
	if v, ok := paused(); ok {
		t.Errorf("scaled up: %s = %q, want it removed so that KEDA scales the canary", kedav1alpha1.PausedReplicasAnnotation, v)
	}
	if got := replicasOf(f, "podinfo"); got != 4 {
		t.Errorf("scaled up: replicas = %d, want the ScaledObject's minimum 4", got)
	}

	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	f.must(w.RestoreTarget(f.ctx(), cd))
	if v, ok := paused(); ok {
		t.Errorf("restored: %s = %q, want it removed", kedav1alpha1.PausedReplicasAnnotation, v)
	}

	u := &unstructured.Unstructured{}
	u.SetAPIVersion("keda.sh/v1alpha1")
	u.SetKind("ScaledObject")
	if err := k8s.Get(f.ctx(), client.ObjectKey{Namespace: f.ns, Name: "podinfo"}, u); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := unstructured.NestedString(u.Object, "spec", "futureField"); v != "kept" {
		t.Errorf("spec.futureField = %q, want the target's field Sluice does not know left alone", v)
	}
}

func TestEnsurePrimary_ScaledObjectCopyIsNeverPaused(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	so := scaledObject(2, 6)
	so.SetAnnotations(map[string]string{kedav1alpha1.PausedReplicasAnnotation: "0", kedav1alpha1.PausedAnnotation: "true"})
	f.create(deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](0) }), so)
	cd := f.canary("Deployment", withScaledObject)

	f.must(f.workload(cd).SyncAutoscaler(f.ctx(), cd))

	if a := getScaledObject(f, "podinfo-primary").Annotations; len(a) != 0 {
		t.Errorf("annotations = %v, want none: the parked target's pause must not stop the primary's autoscaling", a)
	}
}

func TestScalePrimaryAtLeast_RaisesPrimaryScaledObjectMinimum(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(), scaledObject(1, 5))
	cd := f.canary("Deployment", withScaledObject)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))

	f.must(w.ScalePrimaryAtLeast(f.ctx(), cd, 8))
	if got := ptr.Deref(getScaledObject(f, "podinfo-primary").Spec.MinReplicaCount, 0); got != 5 {
		t.Errorf("minReplicaCount = %d, want 5 (8 capped at the maximum)", got)
	}
	if got := replicasOf(f, "podinfo-primary"); got != 8 {
		t.Errorf("primary replicas = %d, want 8", got)
	}
	f.must(w.SyncAutoscaler(f.ctx(), cd))
	if got := ptr.Deref(getScaledObject(f, "podinfo-primary").Spec.MinReplicaCount, 0); got != 1 {
		t.Errorf("after SyncAutoscaler: minReplicaCount = %d, want the target's 1 again", got)
	}
}

func TestObserve_MissingScaledObjectIsAProblem(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment", withScaledObject)

	_, err := f.workload(cd).Observe(f.ctx(), cd)

	p, ok := problem.As(err)
	if !ok || p.Reason != problem.AutoscalerNotFound {
		t.Fatalf("err = %v, want a problem %s", err, problem.AutoscalerNotFound)
	}
	if want := "ScaledObject podinfo not found in namespace " + f.ns; !strings.HasPrefix(p.Message, want) {
		t.Errorf("message = %q, want it to start with %q", p.Message, want)
	}
	// Parking a target whose ScaledObject is gone still works: there is
	// nothing to pause.
	f.must(f.workload(cd).ScaleTargetToZero(f.ctx(), cd))
}
