package canary_test

import (
	"errors"
	"slices"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/problem"
)

func TestPromote_CopiesTemplateAndRegeneratesFlaggerID(t *testing.T) {
	t.Parallel()
	cfg := defaultConfig()
	cfg.IncludeLabelPrefix = []string{"team.io"}
	f := newFixture(t, cfg)
	f.create(deployment())
	cd := f.canary("Deployment")
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	oldID := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Template.Annotations[canary.FlaggerIDAnnotation]

	update(f, "podinfo", &appsv1.Deployment{}, func(d *appsv1.Deployment) {
		d.Labels["team.io/release"] = "r2"
		d.Spec.Replicas = ptr.To[int32](4)
		d.Spec.MinReadySeconds = 9
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.1.0"
		d.Spec.Template.Annotations["checksum"] = "2"
	})
	st := f.observe(w, cd)

	f.must(f.promote(w, cd))

	p := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)
	tmpl := p.Spec.Template
	if tmpl.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.1.0" || tmpl.Annotations["checksum"] != "2" {
		t.Errorf("template = %+v, want the target's new template", tmpl)
	}
	if tmpl.Labels["app"] != "podinfo-primary" {
		t.Errorf("template label app = %q, want podinfo-primary", tmpl.Labels["app"])
	}
	if id := tmpl.Annotations[canary.FlaggerIDAnnotation]; id == oldID || !uuidPattern.MatchString(id) {
		t.Errorf("flagger-id = %q (was %q), want a new UUID", id, oldID)
	}
	if ptr.Deref(p.Spec.Replicas, 0) != 4 || p.Spec.MinReadySeconds != 9 {
		t.Errorf("replicas %d minReadySeconds %d, want 4 and 9", ptr.Deref(p.Spec.Replicas, 0), p.Spec.MinReadySeconds)
	}
	if p.Labels["team.io/release"] != "r2" || p.Labels["app"] != "podinfo-primary" {
		t.Errorf("labels = %v, want the new included label and app=podinfo-primary", p.Labels)
	}
	if p.Annotations[canary.RevisionAnnotation] != st.Revision {
		t.Errorf("revision annotation = %q, want %q", p.Annotations[canary.RevisionAnnotation], st.Revision)
	}
}

func TestPromote_DaemonSetCopiesTemplate(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(daemonSet())
	cd := f.canary("DaemonSet")
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	update(f, "podinfo", &appsv1.DaemonSet{}, func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.1.0"
	})

	f.must(f.promote(w, cd))

	spec := f.get("podinfo-primary", &appsv1.DaemonSet{}).(*appsv1.DaemonSet).Spec.Template.Spec
	if spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.1.0" {
		t.Errorf("image = %s, want the new image", spec.Containers[0].Image)
	}
	if spec.NodeSelector != nil {
		t.Errorf("nodeSelector = %v, want the parking selector left out", spec.NodeSelector)
	}
}

func TestPromote_LeavesPrimaryReplicasToItsAutoscaler(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(), hpa(2, 6))
	cd := f.canary("Deployment", withHPA)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	// The primary HPA scaled the primary to 5; the target changes to 2.
	update(f, "podinfo-primary", &appsv1.Deployment{}, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](5) })
	update(f, "podinfo", &appsv1.Deployment{}, func(d *appsv1.Deployment) {
		d.Spec.Replicas = ptr.To[int32](2)
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.1.0"
	})

	f.must(f.promote(w, cd))

	p := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)
	if got := ptr.Deref(p.Spec.Replicas, 0); got != 5 {
		t.Errorf("replicas = %d, want 5 left to the HPA", got)
	}
	if p.Spec.Template.Spec.Containers[0].Image != "ghcr.io/stefanprodan/podinfo:6.1.0" {
		t.Errorf("template not promoted")
	}
}

func TestPromote_CreatesMissingPrimary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment")

	f.must(f.promote(f.workload(cd), cd))

	f.get("podinfo-primary", &appsv1.Deployment{})
}

// ownedObject names an object the Canary owns.
type ownedObject struct {
	name string
	obj  client.Object
}

func TestIdleReconcile_WritesNothing(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"Deployment", "DaemonSet"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			cfg := defaultConfig()
			cfg.IncludeLabelPrefix = []string{"*"}
			f := newFixture(t, cfg)
			createConfigs(f)
			target := configTarget()
			target.Labels["team.io/owner"] = "x"
			target.Annotations = map[string]string{"note": "n"}
			owned := []ownedObject{{"cm-vol-primary", &corev1.ConfigMap{}}, {"s-env-primary", &corev1.Secret{}}}
			var mutate []func(*flaggerv1beta1.Canary)
			if kind == "Deployment" {
				f.create(target, hpa(2, 6))
				mutate = append(mutate, withHPA)
				owned = append(owned, ownedObject{"podinfo-primary", &appsv1.Deployment{}}, ownedObject{"podinfo-primary", &autoscalingv2.HorizontalPodAutoscaler{}})
			} else {
				f.create(daemonSetLike(target))
				owned = append(owned, ownedObject{"podinfo-primary", &appsv1.DaemonSet{}})
			}
			cd := f.canary(kind, mutate...)
			w := f.workload(cd)
			f.must(w.EnsurePrimary(f.ctx(), cd))
			before := resourceVersions(f, owned)
			f.writes.Store(0)

			for range 2 {
				f.observe(w, cd)
				f.must(w.EnsurePrimary(f.ctx(), cd))
				f.must(f.promote(w, cd))
				f.must(w.ScaleTargetUp(f.ctx(), cd))
				f.must(w.ScalePrimaryAtLeast(f.ctx(), cd, 1))
			}

			if n := f.writes.Load(); n != 0 {
				t.Errorf("%d writes, want none", n)
			}
			if after := resourceVersions(f, owned); !slices.Equal(before, after) {
				t.Errorf("resourceVersions %v → %v, want unchanged", before, after)
			}
		})
	}
}

// daemonSetLike turns a Deployment fixture into a DaemonSet with the same
// metadata and template.
func daemonSetLike(d *appsv1.Deployment) *appsv1.DaemonSet {
	return &appsv1.DaemonSet{
		ObjectMeta: d.ObjectMeta,
		Spec:       appsv1.DaemonSetSpec{Selector: d.Spec.Selector, Template: d.Spec.Template},
	}
}

// resourceVersions reads the resourceVersion of each object.
func resourceVersions(f *fixture, objs []ownedObject) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, f.get(o.name, o.obj).GetResourceVersion())
	}
	return out
}

func TestPromote_RefusesARevisionTheTargetNoLongerHolds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment")
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	analysed := f.observe(w, cd).Revision
	before := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)

	// A new revision lands between the last check and the promotion.
	update(f, "podinfo", &appsv1.Deployment{}, func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Image = "ghcr.io/stefanprodan/podinfo:6.9.9"
	})
	f.writes.Store(0)
	err := w.Promote(f.ctx(), cd, analysed)
	if !errors.Is(err, canary.ErrRevisionChanged) {
		t.Fatalf("Promote of the analysed revision after a change = %v, want ErrRevisionChanged", err)
	}
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes: the primary or its configs were touched with a revision nobody analysed", n)
	}
	after := f.get("podinfo-primary", &appsv1.Deployment{}).(*appsv1.Deployment)
	if after.Generation != before.Generation || after.Spec.Template.Spec.Containers[0].Image != before.Spec.Template.Spec.Containers[0].Image {
		t.Errorf("primary changed: image %s, generation %d → %d", after.Spec.Template.Spec.Containers[0].Image, before.Generation, after.Generation)
	}
}

func TestObserve_AMissingTargetStillReportsThePrimary(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment")
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	if err := k8s.Delete(f.ctx(), f.get("podinfo", &appsv1.Deployment{})); err != nil {
		t.Fatal(err)
	}
	st, err := w.Observe(f.ctx(), cd)
	if !problem.Is(err, problem.TargetNotFound) || st == nil {
		t.Fatalf("Observe = %+v, %v; want the primary's state with TargetNotFound", st, err)
	}
	if st.Target.Exists || !st.Primary.Exists || st.SelectorLabel != "app" || st.SelectorValue != "podinfo" || len(st.Containers) == 0 {
		t.Errorf("state = %+v; want the selector and containers taken from the primary", st)
	}
}
