package canary_test

import (
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/sluicedev/sluice/pkg/canary"
)

func revision(t *testing.T, tmpl corev1.PodTemplateSpec, configs map[string]string) string {
	t.Helper()
	r, err := canary.Revision(&tmpl, configs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRevision_ChangesWithTemplateAndConfigDataOnly(t *testing.T) {
	t.Parallel()
	configs := map[string]string{"configmap/a": "1111111111111111", "secret/b": "2222222222222222"}
	base := revision(t, podTemplate(), configs)

	tests := []struct {
		name    string
		mutate  func(*corev1.PodTemplateSpec)
		configs map[string]string
		same    bool
	}{
		{name: "nothing changed", same: true},
		{name: "image", mutate: func(p *corev1.PodTemplateSpec) { p.Spec.Containers[0].Image = "podinfo:6.1.0" }},
		{name: "pod label", mutate: func(p *corev1.PodTemplateSpec) { p.Labels["version"] = "2" }},
		{name: "pod annotation", mutate: func(p *corev1.PodTemplateSpec) { p.Annotations["restartedAt"] = "now" }},
		{name: "resources", mutate: func(p *corev1.PodTemplateSpec) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
		}},
		{name: "parking node selector", same: true, mutate: func(p *corev1.PodTemplateSpec) {
			p.Spec.NodeSelector = map[string]string{canary.ScaleToZeroNodeSelector: "true"}
		}},
		{name: "config data", configs: map[string]string{"configmap/a": "3333333333333333", "secret/b": "2222222222222222"}},
		{name: "config added", configs: map[string]string{"configmap/a": "1111111111111111", "secret/b": "2222222222222222", "secret/c": "4"}},
		{name: "config removed", configs: map[string]string{"configmap/a": "1111111111111111"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tmpl := podTemplate()
			if tt.mutate != nil {
				tt.mutate(&tmpl)
			}
			c := configs
			if tt.configs != nil {
				c = tt.configs
			}
			if got := revision(t, tmpl, c); (got == base) != tt.same {
				t.Errorf("revision %s, base %s: same = %v, want %v", got, base, got == base, tt.same)
			}
		})
	}
}

func TestRevision_IndependentOfMapOrder(t *testing.T) {
	t.Parallel()
	build := func(order []int) (corev1.PodTemplateSpec, map[string]string) {
		tmpl := podTemplate()
		tmpl.Labels = map[string]string{}
		tmpl.Spec.NodeSelector = map[string]string{}
		configs := map[string]string{}
		for _, i := range order {
			k := fmt.Sprintf("key-%02d", i)
			tmpl.Labels[k] = k
			tmpl.Spec.NodeSelector[k] = k
			configs["configmap/"+k] = k
		}
		return tmpl, configs
	}
	up, down := make([]int, 40), make([]int, 40)
	for i := range up {
		up[i], down[i] = i, 39-i
	}
	t1, c1 := build(up)
	want := revision(t, t1, c1)
	for range 20 {
		t2, c2 := build(down)
		if got := revision(t, t2, c2); got != want {
			t.Fatalf("revision = %s, want %s whatever the insertion and iteration order", got, want)
		}
	}
}

// TestRevision_IsStableAcrossProcesses pins the revision of a fixed
// template, so that a change of the algorithm, which would make every
// Canary see a new revision after an upgrade, is deliberate.
func TestRevision_IsStableAcrossProcesses(t *testing.T) {
	t.Parallel()
	got := revision(t, podTemplate(), map[string]string{"configmap/a": "1111111111111111"})
	if want := "0b6a3ecece31b90e"; got != want {
		t.Errorf("revision = %s, want %s", got, want)
	}
}

func TestObserve_RevisionIgnoresScaling(t *testing.T) {
	t.Parallel()
	for _, kind := range []string{"Deployment", "DaemonSet"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, defaultConfig())
			if kind == "Deployment" {
				f.create(deployment())
			} else {
				f.create(daemonSet())
			}
			cd := f.canary(kind)
			w := f.workload(cd)
			before := f.observe(w, cd).Revision

			f.must(w.ScaleTargetToZero(f.ctx(), cd))
			parked := f.observe(w, cd).Revision
			if kind == "Deployment" {
				update(f, "podinfo", &appsv1.Deployment{}, func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](7) })
			} else {
				f.must(w.ScaleTargetUp(f.ctx(), cd))
			}
			scaled := f.observe(w, cd).Revision

			if parked != before || scaled != before {
				t.Errorf("revision %s, parked %s, scaled %s: want all equal", before, parked, scaled)
			}
		})
	}
}
