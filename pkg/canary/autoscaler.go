package canary

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// autoscaler operates one kind of spec.autoscalerRef: the target's
// autoscaler, which Sluice reads and pauses, and its copy
// <autoscaler>-primary, which Sluice owns and which scales
// <target>-primary. Every method is idempotent.
type autoscaler interface {
	// read reads the target's autoscaler. A missing one is a
	// *problem.Problem.
	read(ctx context.Context, cd *flaggerv1beta1.Canary) (*scaler, error)
	// syncPrimary creates the primary's autoscaler from the target's when
	// it is missing and, when update is set, gives an existing one the
	// target's spec again (which undoes a raised minimum).
	syncPrimary(ctx context.Context, cd *flaggerv1beta1.Canary, s *scaler, update bool) error
	// raisePrimaryMin raises the minimum of the primary's autoscaler to n,
	// capped at its maximum. It never lowers it, and does nothing before
	// the primary's autoscaler exists.
	raisePrimaryMin(ctx context.Context, cd *flaggerv1beta1.Canary, n int32) error
	// minReplicas returns the minimum of the target's autoscaler, or 0
	// when it is gone.
	minReplicas(ctx context.Context, cd *flaggerv1beta1.Canary) (int32, error)
	// pause stops (on) or restarts (off) the target's autoscaler, so that
	// it does not scale a parked target back up.
	pause(ctx context.Context, cd *flaggerv1beta1.Canary, on bool) error
}

// scaler is a target autoscaler as read.
type scaler struct {
	// obj is the autoscaler.
	obj client.Object
	// desired is the replica count it wants now, or 0 when unknown.
	desired int32
	// primaryMin is the minimum replica count of the primary's copy, with
	// spec.autoscalerRef.primaryScalerReplicas applied; 0 when unset.
	primaryMin int32
}

// autoscalers maps a kind of spec.autoscalerRef to its implementation.
// Adding a kind is one file and one line here.
var autoscalers = map[string]func(Deps) autoscaler{
	hpaKind:          newHPAScaler,
	scaledObjectKind: newScaledObjectScaler,
}

// autoscalerOf returns the Canary's autoscaler, nil without an
// autoscalerRef, or an *problem.Problem for a kind Sluice does not
// operate.
func (e *engine) autoscalerOf(cd *flaggerv1beta1.Canary) (autoscaler, error) {
	ref := cd.Spec.AutoscalerRef
	if ref == nil {
		return nil, nil
	}
	newScaler, ok := autoscalers[ref.Kind]
	if !ok {
		return nil, problem.New(problem.UnsupportedAutoscaler,
			"autoscalerRef %s %s is not supported: use a HorizontalPodAutoscaler or a KEDA ScaledObject, or remove spec.autoscalerRef", ref.Kind, ref.Name)
	}
	return newScaler(e.deps), nil
}

// readAutoscaler reads the target's autoscaler; nil without one.
func (e *engine) readAutoscaler(ctx context.Context, cd *flaggerv1beta1.Canary) (*scaler, error) {
	a, err := e.autoscalerOf(cd)
	if err != nil || a == nil {
		return nil, err
	}
	return a.read(ctx, cd)
}

// syncAutoscaler creates or updates the primary's autoscaler from s, which
// readAutoscaler returned; nil does nothing.
func (e *engine) syncAutoscaler(ctx context.Context, cd *flaggerv1beta1.Canary, s *scaler, update bool) error {
	if s == nil {
		return nil
	}
	a, err := e.autoscalerOf(cd)
	if err != nil || a == nil {
		return err
	}
	return a.syncPrimary(ctx, cd, s, update)
}

// SyncAutoscaler implements Workload: the primary's autoscaler gets the
// target's spec again.
func (e *engine) SyncAutoscaler(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	s, err := e.readAutoscaler(ctx, cd)
	if err != nil {
		return err
	}
	return e.syncAutoscaler(ctx, cd, s, true)
}

// raisePrimaryAutoscalerMin raises the primary autoscaler's minimum to n;
// without an autoscaler it does nothing.
func (e *engine) raisePrimaryAutoscalerMin(ctx context.Context, cd *flaggerv1beta1.Canary, n int32) error {
	a, err := e.autoscalerOf(cd)
	if err != nil || a == nil {
		return err
	}
	return a.raisePrimaryMin(ctx, cd, n)
}

// autoscalerMinReplicas returns the minimum of the target's autoscaler, 0
// without one.
func (e *engine) autoscalerMinReplicas(ctx context.Context, cd *flaggerv1beta1.Canary) (int32, error) {
	a, err := e.autoscalerOf(cd)
	if err != nil || a == nil {
		return 0, err
	}
	return a.minReplicas(ctx, cd)
}

// pauseAutoscaler pauses (on) or resumes the target's autoscaler; without
// one it does nothing.
func (e *engine) pauseAutoscaler(ctx context.Context, cd *flaggerv1beta1.Canary, on bool) error {
	a, err := e.autoscalerOf(cd)
	if err != nil || a == nil {
		return err
	}
	return a.pause(ctx, cd, on)
}
