package canary_test

import (
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
)

func replicasOf(f *fixture, name string) int32 {
	f.t.Helper()
	return ptr.Deref(f.get(name, &appsv1.Deployment{}).(*appsv1.Deployment).Spec.Replicas, -1)
}

func TestScaleTargetToZero_DeploymentSetsReplicasToZero(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment())
	cd := f.canary("Deployment")
	w := f.workload(cd)

	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	if got := replicasOf(f, "podinfo"); got != 0 {
		t.Errorf("replicas = %d, want 0", got)
	}
	f.writes.Store(0)
	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes scaling a target already at zero, want none", n)
	}
}

func TestRestoreTarget_DeploymentGetsThePrimarysReplicas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		target, primary int32 // primary -1: no primary
		hpaMin          int32
		want            int32
	}{
		{name: "primary's replicas even with an HPA", target: 0, primary: 5, hpaMin: 2, want: 5},
		{name: "a target above the primary is left alone", target: 6, primary: 5, want: 6},
		{name: "without a primary, as a scale-up", target: 0, primary: -1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, defaultConfig())
			f.create(deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(tt.target) }))
			if tt.primary >= 0 {
				f.create(deployment(func(d *appsv1.Deployment) {
					d.Name = "podinfo-primary"
					d.Spec.Replicas = ptr.To(tt.primary)
				}))
			}
			var mutate []func(*flaggerv1beta1.Canary)
			if tt.hpaMin > 0 {
				f.create(hpa(tt.hpaMin, 10))
				mutate = append(mutate, withHPA)
			}
			cd := f.canary("Deployment", mutate...)
			f.must(f.workload(cd).RestoreTarget(f.ctx(), cd))
			if got := replicasOf(f, "podinfo"); got != tt.want {
				t.Errorf("replicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestScaleTargetUp_DeploymentPicksReplicas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		target  int32
		primary int32 // -1: no primary
		hpaMin  int32 // 0: no HPA
		want    int32
	}{
		{name: "target above zero is left alone", target: 2, primary: 5, want: 2},
		{name: "primary's replicas", target: 0, primary: 5, want: 5},
		// With an autoscaler Flagger starts the canary at the autoscaler's
		// minimum, not at the primary's (possibly scaled-out) count.
		{name: "HPA minimum, not the primary's replicas, with an HPA", target: 0, primary: 5, hpaMin: 3, want: 3},
		{name: "HPA minimum when the primary is at zero", target: 0, primary: 0, hpaMin: 3, want: 3},
		{name: "HPA minimum without a primary", target: 0, primary: -1, hpaMin: 2, want: 2},
		{name: "one with an HPA whose minimum is one", target: 0, primary: 5, hpaMin: 1, want: 1},
		{name: "one otherwise", target: 0, primary: -1, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, defaultConfig())
			f.create(deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To(tt.target) }))
			if tt.primary >= 0 {
				p := deployment(func(d *appsv1.Deployment) {
					d.Name = "podinfo-primary"
					d.Spec.Replicas = ptr.To(tt.primary)
				})
				f.create(p)
			}
			var mutate []func(*flaggerv1beta1.Canary)
			if tt.hpaMin > 0 {
				f.create(hpa(tt.hpaMin, 10))
				mutate = append(mutate, withHPA)
			}
			cd := f.canary("Deployment", mutate...)

			f.must(f.workload(cd).ScaleTargetUp(f.ctx(), cd))

			if got := replicasOf(f, "podinfo"); got != tt.want {
				t.Errorf("replicas = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestScaleTarget_DaemonSetParksWithNodeSelector(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(daemonSet(func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	}))
	cd := f.canary("DaemonSet")
	w := f.workload(cd)
	nodeSelector := func() map[string]string {
		return f.get("podinfo", &appsv1.DaemonSet{}).(*appsv1.DaemonSet).Spec.Template.Spec.NodeSelector
	}

	f.must(w.ScaleTargetToZero(f.ctx(), cd))
	if want := map[string]string{"disk": "ssd", canary.ScaleToZeroNodeSelector: "true"}; !maps.Equal(nodeSelector(), want) {
		t.Errorf("parked nodeSelector = %v, want %v", nodeSelector(), want)
	}

	f.must(w.ScaleTargetUp(f.ctx(), cd))
	if want := map[string]string{"disk": "ssd"}; !maps.Equal(nodeSelector(), want) {
		t.Errorf("unparked nodeSelector = %v, want %v", nodeSelector(), want)
	}
}

func TestScalePrimaryAtLeast_RaisesReplicasAndHPAMinimumNeverLowers(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](2) }), hpa(1, 5))
	cd := f.canary("Deployment", withHPA)
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	hpaMin := func() int32 {
		h := f.get("podinfo-primary", &autoscalingv2.HorizontalPodAutoscaler{}).(*autoscalingv2.HorizontalPodAutoscaler)
		return ptr.Deref(h.Spec.MinReplicas, 0)
	}

	steps := []struct {
		atLeast     int32
		replicas    int32
		minReplicas int32
	}{
		{atLeast: 4, replicas: 4, minReplicas: 4},
		{atLeast: 2, replicas: 4, minReplicas: 4}, // never lowers
		{atLeast: 8, replicas: 8, minReplicas: 5}, // HPA minimum capped at its maximum
	}
	for _, s := range steps {
		f.must(w.ScalePrimaryAtLeast(f.ctx(), cd, s.atLeast))
		if got := replicasOf(f, "podinfo-primary"); got != s.replicas {
			t.Errorf("at least %d: replicas = %d, want %d", s.atLeast, got, s.replicas)
		}
		if got := hpaMin(); got != s.minReplicas {
			t.Errorf("at least %d: HPA minReplicas = %d, want %d", s.atLeast, got, s.minReplicas)
		}
	}
	if got := replicasOf(f, "podinfo"); got != 2 {
		t.Errorf("target replicas = %d, want 2 untouched", got)
	}

	// Promote copies the target HPA again, undoing the raised minimum.
	f.must(f.promote(w, cd))
	if got := hpaMin(); got != 1 {
		t.Errorf("after Promote: HPA minReplicas = %d, want 1", got)
	}
}

func TestScalePrimaryAtLeast_DaemonSetDoesNothing(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(daemonSet())
	cd := f.canary("DaemonSet")
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	f.writes.Store(0)

	f.must(w.ScalePrimaryAtLeast(f.ctx(), cd, 5))

	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes, want none", n)
	}
}
