package canary

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// deployment operates an apps/v1 Deployment target.
type deployment struct{ engine }

func newDeployment(deps Deps) Workload {
	return &deployment{engine{deps: deps, ops: deploymentOps{}}}
}

// ScaleTargetToZero implements Workload: it pauses the target's
// autoscaler, so that it does not scale the target back up, and sets the
// target's replicas to 0.
func (w *deployment) ScaleTargetToZero(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	if err := w.pauseAutoscaler(ctx, cd, true); err != nil {
		return err
	}
	target, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	return w.setReplicas(ctx, target.(*appsv1.Deployment), 0)
}

// ScaleTargetUp implements Workload. It resumes the target's autoscaler;
// a target above zero is then left alone. One at zero gets, as in Flagger:
// without an autoscaler, the primary's replica count when above zero; with
// one, the autoscaler's minimum when above 1; else 1.
func (w *deployment) ScaleTargetUp(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	if err := w.pauseAutoscaler(ctx, cd, false); err != nil {
		return err
	}
	obj, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	target := obj.(*appsv1.Deployment)
	if ptr.Deref(target.Spec.Replicas, 1) > 0 {
		return nil
	}
	n, err := w.scaledUpReplicas(ctx, cd)
	if err != nil {
		return err
	}
	return w.setReplicas(ctx, target, n)
}

// scaledUpReplicas is the replica count ScaleTargetUp gives a target at
// zero.
func (w *deployment) scaledUpReplicas(ctx context.Context, cd *flaggerv1beta1.Canary) (int32, error) {
	n := int32(1)
	if cd.Spec.AutoscalerRef == nil {
		primary, found, err := w.getPrimary(ctx, cd)
		if err != nil {
			return 0, err
		}
		if found && w.ops.replicas(primary) > 0 {
			n = w.ops.replicas(primary)
		}
		return n, nil
	}
	autoscalerMin, err := w.autoscalerMinReplicas(ctx, cd)
	if err != nil {
		return 0, err
	}
	return max(n, autoscalerMin), nil
}

// RestoreTarget implements Workload: the target's autoscaler is resumed
// and the target gets the primary's replica count, so that it carries the
// primary's load once it serves the traffic again; without a primary it is
// scaled up as by ScaleTargetUp.
func (w *deployment) RestoreTarget(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	if err := w.pauseAutoscaler(ctx, cd, false); err != nil {
		return err
	}
	primary, found, err := w.getPrimary(ctx, cd)
	if err != nil {
		return err
	}
	if !found || w.ops.replicas(primary) == 0 {
		return w.ScaleTargetUp(ctx, cd)
	}
	obj, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	target := obj.(*appsv1.Deployment)
	if ptr.Deref(target.Spec.Replicas, 1) >= w.ops.replicas(primary) {
		return nil
	}
	return w.setReplicas(ctx, target, w.ops.replicas(primary))
}

// ScalePrimaryAtLeast implements Workload.
func (w *deployment) ScalePrimaryAtLeast(ctx context.Context, cd *flaggerv1beta1.Canary, replicas int32) error {
	ctx = withCanary(ctx, cd)
	primary, found, err := w.getPrimary(ctx, cd)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("scaling Deployment %s/%s: it does not exist yet", cd.Namespace, PrimaryName(cd.Spec.TargetRef.Name))
	}
	if w.ops.replicas(primary) < replicas {
		if err := w.setReplicas(ctx, primary.(*appsv1.Deployment), replicas); err != nil {
			return err
		}
	}
	return w.raisePrimaryAutoscalerMin(ctx, cd, replicas)
}

// setReplicas patches spec.replicas when it differs from n.
func (w *deployment) setReplicas(ctx context.Context, d *appsv1.Deployment, n int32) error {
	orig := d.DeepCopy()
	d.Spec.Replicas = ptr.To(n)
	_, err := patchIfChanged(ctx, w.deps.Client, orig, d, "Deployment")
	return err
}

// deploymentOps are the Deployment specifics of the engine.
type deploymentOps struct{}

func (deploymentOps) kind() string             { return "Deployment" }
func (deploymentOps) newObject() client.Object { return &appsv1.Deployment{} }

func (deploymentOps) podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	return &obj.(*appsv1.Deployment).Spec.Template
}

func (deploymentOps) selector(obj client.Object) *metav1.LabelSelector {
	return obj.(*appsv1.Deployment).Spec.Selector
}

func (deploymentOps) setSelector(obj client.Object, sel *metav1.LabelSelector) {
	obj.(*appsv1.Deployment).Spec.Selector = sel
}

func (deploymentOps) copySpec(primary, target client.Object, replicas *int32) {
	p, t := primary.(*appsv1.Deployment), target.(*appsv1.Deployment)
	if replicas != nil {
		p.Spec.Replicas = ptr.To(*replicas)
	}
	p.Spec.ProgressDeadlineSeconds = copyPtr(t.Spec.ProgressDeadlineSeconds)
	p.Spec.MinReadySeconds = t.Spec.MinReadySeconds
	p.Spec.RevisionHistoryLimit = copyPtr(t.Spec.RevisionHistoryLimit)
	p.Spec.Strategy = *t.Spec.Strategy.DeepCopy()
}

func (deploymentOps) replicas(obj client.Object) int32 {
	return ptr.Deref(obj.(*appsv1.Deployment).Spec.Replicas, 1)
}

func (deploymentOps) state(obj client.Object, threshold int32) WorkloadState {
	return DeploymentState(obj.(*appsv1.Deployment), threshold)
}

// copyPtr returns a pointer to a copy of *p, or nil.
func copyPtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
