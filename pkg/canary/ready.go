package canary

import (
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// defaultReadyThreshold is the ready threshold, in percent, when the
// Canary does not set one.
const defaultReadyThreshold = 100

// progressDeadlineExceeded is the reason of a Deployment's Progressing
// condition when its controller gave up on the rollout.
const progressDeadlineExceeded = "ProgressDeadlineExceeded"

// ReadyThreshold returns the percentage of replicas that must be available
// for the primary (spec.analysis.primaryReadyThreshold) or the target
// (canaryReadyThreshold), 100 when unset.
func ReadyThreshold(cd *flaggerv1beta1.Canary, primary bool) int32 {
	a := cd.Spec.Analysis
	if a == nil {
		return defaultReadyThreshold
	}
	if primary {
		return ptr.Deref(a.PrimaryReadyThreshold, defaultReadyThreshold)
	}
	return ptr.Deref(a.CanaryReadyThreshold, defaultReadyThreshold)
}

// minAvailable is ceil(n * threshold / 100), with threshold bounded to
// 0..100 (the spec check refuses more), so that it is at most n.
func minAvailable(n, threshold int32) int32 {
	threshold = min(max(threshold, 0), 100)
	return int32((int64(n)*int64(threshold) + 99) / 100) //nolint:gosec // at most n, with threshold within 0..100
}

// DeploymentState judges a Deployment from its spec and the status its
// controller wrote. It is Ready when the controller observed the latest
// generation, every desired replica runs the current template, no old
// replica is left and at least threshold percent of the updated replicas
// are available; one with zero desired replicas is never Ready, since no
// pod of it could serve. It is Stalled when the Progressing condition has
// reason ProgressDeadlineExceeded.
func DeploymentState(d *appsv1.Deployment, threshold int32) WorkloadState {
	st := d.Status
	s := WorkloadState{
		Exists:            true,
		Replicas:          ptr.Deref(d.Spec.Replicas, 1),
		AvailableReplicas: min(st.AvailableReplicas, st.UpdatedReplicas),
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == progressDeadlineExceeded {
			s.Stalled = true
		}
	}
	want := minAvailable(st.UpdatedReplicas, threshold)
	switch {
	case st.ObservedGeneration < d.Generation:
		s.Message = fmt.Sprintf("waiting for rollout: the controller has not observed generation %d yet", d.Generation)
	case s.Replicas == 0:
		// No pod serves: never ready, whatever its controller reports.
		s.Message = "scaled to zero replicas"
	case st.UpdatedReplicas < s.Replicas:
		s.Message = fmt.Sprintf("waiting for rollout: %d of %d replicas updated", st.UpdatedReplicas, s.Replicas)
	case st.UpdatedReplicas > s.Replicas:
		s.Message = fmt.Sprintf("waiting for rollout: %d updated replicas, scaling down to %d", st.UpdatedReplicas, s.Replicas)
	case st.Replicas > st.UpdatedReplicas:
		s.Message = fmt.Sprintf("waiting for rollout: %d old replicas pending termination", st.Replicas-st.UpdatedReplicas)
	case st.AvailableReplicas < want:
		s.Message = fmt.Sprintf("waiting for rollout: %d of %d updated replicas available", st.AvailableReplicas, st.UpdatedReplicas)
	default:
		s.Ready = true
	}
	if s.Stalled && !s.Ready {
		s.Message = fmt.Sprintf("rollout stalled: progress deadline exceeded (%s)", s.Message)
	}
	return s
}

// DaemonSetState judges a DaemonSet from the status its controller wrote.
// It is Ready when the controller observed the latest generation, every
// node that should run a pod runs the current template and at least
// threshold percent of those pods are available. A DaemonSet has no
// progress deadline, so it is never Stalled.
func DaemonSetState(ds *appsv1.DaemonSet, threshold int32) WorkloadState {
	st := ds.Status
	s := WorkloadState{
		Exists:            true,
		Replicas:          st.DesiredNumberScheduled,
		AvailableReplicas: min(st.NumberAvailable, st.UpdatedNumberScheduled),
	}
	want := minAvailable(st.DesiredNumberScheduled, threshold)
	switch {
	case st.ObservedGeneration < ds.Generation:
		s.Message = fmt.Sprintf("waiting for rollout: the controller has not observed generation %d yet", ds.Generation)
	case st.DesiredNumberScheduled == 0:
		s.Message = "no node runs a pod of it"
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		s.Message = fmt.Sprintf("waiting for rollout: %d of %d pods updated", st.UpdatedNumberScheduled, st.DesiredNumberScheduled)
	case st.NumberAvailable < want:
		s.Message = fmt.Sprintf("waiting for rollout: %d of %d updated pods available", st.NumberAvailable, st.DesiredNumberScheduled)
	default:
		s.Ready = true
	}
	return s
}

// missingState is the WorkloadState of a workload that does not exist.
func missingState(kind, name string) WorkloadState {
	return WorkloadState{Message: fmt.Sprintf("%s %s does not exist yet", kind, name)}
}
