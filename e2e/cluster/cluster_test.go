package cluster

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestStart_NamesTheMakeTargetOfAMissingBinary(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	_, err := Start(t.Context(), Options{})
	if err == nil || !strings.Contains(err.Error(), "kube-controller-manager not found: run `make tools-e2e`") {
		t.Fatalf("Start() error = %v, want one naming kube-controller-manager and make tools-e2e", err)
	}
}

func TestRolloutProgress(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status appsv1.DeploymentStatus
		want   string
	}{
		{"generation not observed", appsv1.DeploymentStatus{ObservedGeneration: 1}, "generation 2 not observed yet"},
		{"replicas not updated", appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 1, Replicas: 3}, "1 of 3 replicas updated"},
		{"old replicas left", appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 3, Replicas: 4}, "1 old replicas pending termination"},
		{"not available", appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 3, Replicas: 3, AvailableReplicas: 2}, "2 of 3 updated replicas available"},
		{"complete", appsv1.DeploymentStatus{ObservedGeneration: 2, UpdatedReplicas: 3, Replicas: 3, AvailableReplicas: 3}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Generation: 2},
				Spec:       appsv1.DeploymentSpec{Replicas: ptr.To[int32](3)},
				Status:     tc.status,
			}
			if got := RolloutProgress(d); got != tc.want {
				t.Errorf("RolloutProgress() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnschedulable(t *testing.T) {
	ready := []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}}
	for _, tc := range []struct {
		name string
		node corev1.Node
		want string
	}{
		{"new", corev1.Node{}, "not Ready"},
		{"ready but tainted", corev1.Node{
			Spec:   corev1.NodeSpec{Taints: []corev1.Taint{{Key: "node.kubernetes.io/not-ready", Effect: corev1.TaintEffectNoSchedule}}},
			Status: corev1.NodeStatus{Conditions: ready},
		}, "tainted node.kubernetes.io/not-ready"},
		{"cordoned", corev1.Node{Spec: corev1.NodeSpec{Unschedulable: true}, Status: corev1.NodeStatus{Conditions: ready}}, "cordoned"},
		{"ready", corev1.Node{Status: corev1.NodeStatus{Conditions: ready}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unschedulable(&tc.node); got != tc.want {
				t.Errorf("unschedulable() = %q, want %q", got, tc.want)
			}
		})
	}
}
