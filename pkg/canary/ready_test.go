package canary_test

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/canary"
)

// deploymentWithStatus is a Deployment at generation 2 with the given
// desired replicas and status.
func deploymentWithStatus(replicas int32, st appsv1.DeploymentStatus) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "podinfo", Generation: 2},
		Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
		Status:     st,
	}
}

func TestDeploymentState_JudgesRollout(t *testing.T) {
	t.Parallel()
	deadline := []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"}}
	tests := []struct {
		name      string
		replicas  int32
		status    appsv1.DeploymentStatus
		threshold int32
		ready     bool
		stalled   bool
		message   string
	}{
		{
			name: "rolled out", replicas: 3, threshold: 100, ready: true,
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
		},
		{
			name: "generation not observed", replicas: 3, threshold: 100,
			status:  appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
			message: "waiting for rollout: the controller has not observed generation 2 yet",
		},
		{
			name: "not all updated", replicas: 3, threshold: 100,
			status:  appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 2, AvailableReplicas: 3},
			message: "waiting for rollout: 2 of 3 replicas updated",
		},
		{
			name: "old replicas left", replicas: 3, threshold: 100,
			status:  appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 4},
			message: "waiting for rollout: 1 old replicas pending termination",
		},
		{
			name: "updated but not available", replicas: 3, threshold: 100,
			status:  appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1},
			message: "waiting for rollout: 1 of 3 updated replicas available",
		},
		{
			name: "threshold met", replicas: 3, threshold: 50, ready: true,
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2},
		},
		{
			name: "threshold rounds up", replicas: 3, threshold: 50,
			status:  appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 1},
			message: "waiting for rollout: 1 of 3 updated replicas available",
		},
		{
			// The spec check refuses a threshold above 100; one that gets
			// here anyway asks for every replica, not for more than exist.
			name: "threshold above 100 counts as 100", replicas: 3, threshold: 1000, ready: true,
			status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
		},
		{
			// A primary scaled to zero serves nothing: never ready.
			name: "zero replicas observed", replicas: 0, threshold: 100, message: "scaled to zero replicas",
			status: appsv1.DeploymentStatus{ObservedGeneration: 2},
		},
		{
			name: "zero replicas not observed", replicas: 0, threshold: 100,
			status:  appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3},
			message: "waiting for rollout: the controller has not observed generation 2 yet",
		},
		{
			name: "progress deadline exceeded", replicas: 3, threshold: 100, stalled: true,
			status:  appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 0, Conditions: deadline},
			message: "rollout stalled: progress deadline exceeded (waiting for rollout: 0 of 3 updated replicas available)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := canary.DeploymentState(deploymentWithStatus(tt.replicas, tt.status), tt.threshold)
			if !got.Exists || got.Ready != tt.ready || got.Stalled != tt.stalled || got.Message != tt.message || got.Replicas != tt.replicas {
				t.Errorf("state = %+v, want ready %v stalled %v replicas %d message %q", got, tt.ready, tt.stalled, tt.replicas, tt.message)
			}
		})
	}
}

func TestDaemonSetState_JudgesRollout(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		status    appsv1.DaemonSetStatus
		threshold int32
		ready     bool
		message   string
	}{
		{
			name: "rolled out", threshold: 100, ready: true,
			status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4},
		},
		{
			name: "generation not observed", threshold: 100,
			status:  appsv1.DaemonSetStatus{ObservedGeneration: 1, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 4},
			message: "waiting for rollout: the controller has not observed generation 2 yet",
		},
		{
			name: "not all updated", threshold: 100,
			status:  appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 3, NumberAvailable: 4},
			message: "waiting for rollout: 3 of 4 pods updated",
		},
		{
			name: "below threshold", threshold: 75,
			status:  appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 2},
			message: "waiting for rollout: 2 of 4 updated pods available",
		},
		{
			name: "threshold met", threshold: 75, ready: true,
			status: appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 4, UpdatedNumberScheduled: 4, NumberAvailable: 3},
		},
		{
			name: "parked", threshold: 100, message: "no node runs a pod of it",
			status: appsv1.DaemonSetStatus{ObservedGeneration: 2},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Generation: 2}, Status: tt.status}
			got := canary.DaemonSetState(ds, tt.threshold)
			if !got.Exists || got.Ready != tt.ready || got.Stalled || got.Message != tt.message || got.Replicas != tt.status.DesiredNumberScheduled {
				t.Errorf("state = %+v, want ready %v message %q", got, tt.ready, tt.message)
			}
		})
	}
}

func TestReadyThreshold_DefaultsTo100(t *testing.T) {
	t.Parallel()
	cd := &flaggerv1beta1.Canary{Spec: flaggerv1beta1.CanarySpec{Analysis: &flaggerv1beta1.CanaryAnalysis{PrimaryReadyThreshold: ptr.To[int32](60)}}}
	if got := canary.ReadyThreshold(cd, true); got != 60 {
		t.Errorf("primary threshold = %d, want 60", got)
	}
	if got := canary.ReadyThreshold(cd, false); got != 100 {
		t.Errorf("canary threshold = %d, want 100", got)
	}
	if got := canary.ReadyThreshold(&flaggerv1beta1.Canary{}, true); got != 100 {
		t.Errorf("threshold without analysis = %d, want 100", got)
	}
}

func TestObserve_JudgesTargetAndPrimaryWithTheirThresholds(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	f.create(deployment(func(d *appsv1.Deployment) { d.Spec.Replicas = ptr.To[int32](4) }))
	cd := f.canary("Deployment", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.CanaryReadyThreshold = ptr.To[int32](50)
		cd.Spec.Analysis.PrimaryReadyThreshold = ptr.To[int32](100)
	})
	w := f.workload(cd)
	f.must(w.EnsurePrimary(f.ctx(), cd))
	// Act as the deployment controller: both rolled out, 2 of 4 available.
	for _, name := range []string{"podinfo", "podinfo-primary"} {
		d := f.get(name, &appsv1.Deployment{}).(*appsv1.Deployment)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 4, UpdatedReplicas: 4, ReadyReplicas: 2, AvailableReplicas: 2}
		f.must(k8s.Status().Update(f.ctx(), d))
	}

	st := f.observe(w, cd)

	if !st.Target.Ready || st.Target.AvailableReplicas != 2 {
		t.Errorf("target = %+v, want ready at 50%%", st.Target)
	}
	if st.Primary.Ready || st.Primary.Message != "waiting for rollout: 2 of 4 updated replicas available" {
		t.Errorf("primary = %+v, want not ready at 100%%", st.Primary)
	}
	if st.Primary.Revision != st.Revision {
		t.Errorf("primary revision = %q, want %q", st.Primary.Revision, st.Revision)
	}
}
