package cluster

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
)

// WaitForRollout waits until the Deployment namespace/name has rolled out
// its current template, as `kubectl rollout status` does: the controller has
// seen the latest generation, every replica runs the current template, no
// old replica is left and all are available. Bound the wait with ctx.
func (c *Cluster) WaitForRollout(ctx context.Context, namespace, name string) error {
	key := types.NamespacedName{Namespace: namespace, Name: name}
	var last string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var d appsv1.Deployment
		if err := c.Client.Get(ctx, key, &d); err != nil {
			last = err.Error()
			return false, nil //nolint:nilerr // the Deployment may not exist yet: retry
		}
		last = RolloutProgress(&d)
		return last == "", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for Deployment %s to roll out (%s): %w", key, last, err)
	}
	return nil
}

// RolloutProgress says what a Deployment's rollout still waits for, or
// returns "" when it is complete.
func RolloutProgress(d *appsv1.Deployment) string {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	s := d.Status
	switch {
	case s.ObservedGeneration < d.Generation:
		return fmt.Sprintf("generation %d not observed yet", d.Generation)
	case s.UpdatedReplicas < want:
		return fmt.Sprintf("%d of %d replicas updated", s.UpdatedReplicas, want)
	case s.Replicas > s.UpdatedReplicas:
		return fmt.Sprintf("%d old replicas pending termination", s.Replicas-s.UpdatedReplicas)
	case s.AvailableReplicas < s.UpdatedReplicas:
		return fmt.Sprintf("%d of %d updated replicas available", s.AvailableReplicas, s.UpdatedReplicas)
	}
	return ""
}
