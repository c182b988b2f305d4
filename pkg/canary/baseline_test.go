package canary_test

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/problem"
)

// withBaseline makes the Canary a canary release with a baseline.
func withBaseline(cd *flaggerv1beta1.Canary) {
	a := cd.Spec.Analysis
	a.Iterations, a.StepWeight, a.MaxWeight, a.Baseline = nil, ptr.To[int32](10), ptr.To[int32](50), true
}

// spreadAndConfig gives podinfo's pods an anti-affinity to each other and
// a tracked ConfigMap, both of which the primary and the baseline rewrite.
func spreadAndConfig(d *appsv1.Deployment) {
	spec := &d.Spec.Template.Spec
	spec.Affinity = &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
		PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 100, PodAffinityTerm: corev1.PodAffinityTerm{
			TopologyKey:   "kubernetes.io/hostname",
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "podinfo"}},
		}}},
	}}
	spec.Volumes = []corev1.Volume{{Name: "config", VolumeSource: corev1.VolumeSource{
		ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "podinfo-config"}},
	}}}
}

func TestEnsureBaseline_CopiesThePrimaryBesideTheCanaryAndRemoveDeletesIt(t *testing.T) {
	f := newFixture(t, defaultConfig())
	f.create(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config"}, Data: map[string]string{"color": "blue"}},
		deployment(spreadAndConfig))
	cd := f.canary("Deployment", withBaseline)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	if st := f.observe(w, cd); st.Baseline.Exists {
		t.Fatalf("a baseline exists before any analysis: %+v", st.Baseline)
	}

	// A new revision: the baseline runs the primary's, not the target's.
	update(f, "podinfo", &appsv1.Deployment{}, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.1.0"
	})
	rev := f.observe(w, cd).Revision
	f.writes.Store(0)
	f.must(w.EnsureBaseline(f.ctx(), cd, rev))
	if n := f.writes.Swap(0); n != 1 {
		t.Errorf("EnsureBaseline wrote %d times, want one creation", n)
	}
	primary := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)
	b := f.get("podinfo-baseline", &appsv1.Deployment{}).(*appsv1.Deployment)
	assertControlledBy(t, b, cd)
	tmpl := b.Spec.Template
	switch {
	case tmpl.Spec.Containers[0].Image != primary.Spec.Template.Spec.Containers[0].Image || tmpl.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.0.0":
		t.Errorf("baseline image %s, want the primary's 6.0.0", tmpl.Spec.Containers[0].Image)
	case b.Spec.Selector.MatchLabels["app"] != "podinfo-baseline" || tmpl.Labels["app"] != "podinfo-baseline" || b.Labels["app"] != "podinfo-baseline":
		t.Errorf("baseline selector %v, pod labels %v, labels %v; want app=podinfo-baseline", b.Spec.Selector.MatchLabels, tmpl.Labels, b.Labels)
	case tmpl.Labels["tier"] != "web" || tmpl.Annotations["prometheus.io/scrape"] != "true":
		t.Errorf("baseline pod metadata %v %v, want the primary's", tmpl.Labels, tmpl.Annotations)
	case tmpl.Annotations[canary.FlaggerIDAnnotation] != "" || b.Annotations[canary.RevisionAnnotation] != "":
		t.Errorf("the baseline carries the primary's flagger-id or revision: %v %v", tmpl.Annotations, b.Annotations)
	case tmpl.Annotations[canary.BaselineRevisionAnnotation] != rev:
		t.Errorf("baseline started for %q, want %s", tmpl.Annotations[canary.BaselineRevisionAnnotation], rev)
	case ptr.Deref(b.Spec.Replicas, 0) != 3:
		t.Errorf("baseline replicas %d, want the canary's 3", ptr.Deref(b.Spec.Replicas, 0))
	case tmpl.Spec.Volumes[0].ConfigMap.Name != "podinfo-config-primary":
		t.Errorf("baseline mounts %s, want the primary's copy podinfo-config-primary", tmpl.Spec.Volumes[0].ConfigMap.Name)
	}
	aff := tmpl.Spec.Affinity.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm.LabelSelector.MatchLabels
	if aff["app"] != "podinfo-baseline" {
		t.Errorf("baseline anti-affinity selects app=%s, want podinfo-baseline", aff["app"])
	}
	st := f.observe(w, cd)
	if !st.Baseline.Exists || st.Baseline.Revision != rev || st.Baseline.Replicas != 3 || st.Baseline.Ready {
		t.Errorf("Observe reports the baseline as %+v; want it there, for %s, 3 replicas, not ready before its controller ran", st.Baseline, rev)
	}
	f.must(w.EnsureBaseline(f.ctx(), cd, rev))
	if n := f.writes.Swap(0); n != 0 {
		t.Errorf("EnsureBaseline on an unchanged baseline wrote %d times", n)
	}

	// The canary scales: the baseline follows.
	update(f, "podinfo", &appsv1.Deployment{}, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](5) })
	f.must(w.EnsureBaseline(f.ctx(), cd, rev))
	if b := f.get("podinfo-baseline", &appsv1.Deployment{}).(*appsv1.Deployment); ptr.Deref(b.Spec.Replicas, 0) != 5 {
		t.Errorf("baseline replicas %d after the canary scaled to 5", ptr.Deref(b.Spec.Replicas, 0))
	}

	// The analysis restarts for another revision: fresh baseline pods.
	f.writes.Store(0)
	f.must(w.EnsureBaseline(f.ctx(), cd, "another"))
	b2 := f.get("podinfo-baseline", &appsv1.Deployment{}).(*appsv1.Deployment)
	if f.writes.Swap(0) != 1 || b2.UID != b.UID || b2.Spec.Template.Annotations[canary.BaselineRevisionAnnotation] != "another" ||
		b2.Spec.Template.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.0.0" {
		t.Errorf("after a restart the baseline is %s for %q running %s; want one patch of the same Deployment",
			b2.UID, b2.Spec.Template.Annotations[canary.BaselineRevisionAnnotation], b2.Spec.Template.Spec.Containers[0].Image)
	}

	f.must(w.RemoveBaseline(f.ctx(), cd))
	if err := k8s.Get(f.ctx(), client.ObjectKey{Namespace: f.ns, Name: "podinfo-baseline"}, &appsv1.Deployment{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the baseline is still there after RemoveBaseline: %v", err)
	}
	if st := f.observe(w, cd); st.Baseline.Exists {
		t.Errorf("Observe reports a removed baseline: %+v", st.Baseline)
	}
	f.writes.Store(0)
	f.must(w.RemoveBaseline(f.ctx(), cd))
	if n := f.writes.Load(); n != 0 {
		t.Errorf("RemoveBaseline without a baseline wrote %d times", n)
	}
}

func TestEnsureBaseline_ScalesLikeACanaryThatIsStillAtZero(t *testing.T) {
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment", withBaseline)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	f.must(w.EnsureBaseline(f.ctx(), cd, "rev"))
	// ScaleTargetUp gives a canary at zero the primary's replicas.
	if b := f.get("podinfo-baseline", &appsv1.Deployment{}).(*appsv1.Deployment); ptr.Deref(b.Spec.Replicas, 0) != 3 {
		t.Errorf("baseline replicas %d, want the primary's 3 that the canary is about to get", ptr.Deref(b.Spec.Replicas, 0))
	}
}

func TestEnsureBaseline_NeverTouchesSomeoneElsesDeployment(t *testing.T) {
	f := newFixture(t, defaultConfig())
	theirs := deployment(func(d *appsv1.Deployment) {
		d.Name = "podinfo-baseline"
		d.Labels = map[string]string{"app": "theirs"}
		d.Spec.Selector.MatchLabels = map[string]string{"app": "theirs"}
		d.Spec.Template.Labels = map[string]string{"app": "theirs"}
	})
	f.create(deployment(), theirs)
	cd := f.canary("Deployment", withBaseline)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))

	err := w.EnsureBaseline(f.ctx(), cd, "rev")
	if !problem.Is(err, problem.NotOwned) || !strings.Contains(err.Error(), "Deployment "+f.ns+"/podinfo-baseline exists and is not controlled by Canary podinfo") {
		t.Errorf("EnsureBaseline = %v, want a NotOwned problem naming the Deployment", err)
	}
	st, err := w.Observe(f.ctx(), cd)
	if !problem.Is(err, problem.NotOwned) || st == nil || st.Baseline.Exists {
		t.Errorf("Observe with a baseline asked for = %+v, %v; want the state with no baseline of its own, and a NotOwned problem", st, err)
	}
	noBaseline := cd.DeepCopy()
	noBaseline.Spec.Analysis.Baseline = false
	if st, err := w.Observe(f.ctx(), noBaseline); err != nil || st.Baseline.Exists {
		t.Errorf("Observe without a baseline = %+v, %v; want no problem and no baseline", st.Baseline, err)
	}
	f.writes.Store(0)
	f.must(w.RemoveBaseline(f.ctx(), cd))
	if n := f.writes.Load(); n != 0 {
		t.Errorf("RemoveBaseline wrote %d times to someone else's Deployment", n)
	}
	if got := f.get("podinfo-baseline", &appsv1.Deployment{}); got.GetUID() != theirs.UID {
		t.Errorf("their Deployment was replaced")
	}
}

func TestEnsureBaseline_IsRefusedForADaemonSet(t *testing.T) {
	f := newFixture(t, defaultConfig())
	f.create(daemonSet())
	cd := f.canary("DaemonSet", withBaseline)
	w := f.workload(cd)
	err := w.EnsureBaseline(f.ctx(), cd, "rev")
	if !problem.Is(err, problem.UnsupportedTarget) || !strings.Contains(err.Error(), "remove analysis.baseline") {
		t.Errorf("EnsureBaseline on a DaemonSet = %v, want an UnsupportedTarget problem", err)
	}
	f.must(w.RemoveBaseline(f.ctx(), cd))
}
