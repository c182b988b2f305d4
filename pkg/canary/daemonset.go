package canary

import (
	"context"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// daemonSet operates an apps/v1 DaemonSet target. A DaemonSet has no
// replica count: it is parked by a node selector that no node matches.
type daemonSet struct{ engine }

func newDaemonSet(deps Deps) Workload {
	return &daemonSet{engine{deps: deps, ops: daemonSetOps{}}}
}

// ScaleTargetToZero implements Workload: it adds the node selector
// ScaleToZeroNodeSelector: "true" to the target's pod template.
func (w *daemonSet) ScaleTargetToZero(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	return w.park(withCanary(ctx, cd), cd, true)
}

// ScaleTargetUp implements Workload: it removes the parking node selector.
func (w *daemonSet) ScaleTargetUp(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	return w.park(withCanary(ctx, cd), cd, false)
}

// RestoreTarget implements Workload: it removes the parking node selector.
func (w *daemonSet) RestoreTarget(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	return w.park(withCanary(ctx, cd), cd, false)
}

// ScalePrimaryAtLeast implements Workload. A DaemonSet runs one pod per
// node whatever the load, so there is nothing to raise.
func (w *daemonSet) ScalePrimaryAtLeast(context.Context, *flaggerv1beta1.Canary, int32) error {
	return nil
}

// park adds (on) or removes (off) the parking node selector of the
// target, once its autoscaler, if any, is paused (on) or resumed (off).
func (w *daemonSet) park(ctx context.Context, cd *flaggerv1beta1.Canary, on bool) error {
	if err := w.pauseAutoscaler(ctx, cd, on); err != nil {
		return err
	}
	obj, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	ds := obj.(*appsv1.DaemonSet)
	orig := ds.DeepCopy()
	spec := &ds.Spec.Template.Spec
	if on {
		if spec.NodeSelector == nil {
			spec.NodeSelector = map[string]string{}
		}
		spec.NodeSelector[ScaleToZeroNodeSelector] = "true"
	} else {
		unpark(spec)
	}
	_, err = patchIfChanged(ctx, w.deps.Client, orig, ds, "DaemonSet")
	return err
}

// daemonSetOps are the DaemonSet specifics of the engine.
type daemonSetOps struct{}

func (daemonSetOps) kind() string             { return "DaemonSet" }
func (daemonSetOps) newObject() client.Object { return &appsv1.DaemonSet{} }

func (daemonSetOps) podTemplate(obj client.Object) *corev1.PodTemplateSpec {
	return &obj.(*appsv1.DaemonSet).Spec.Template
}

func (daemonSetOps) selector(obj client.Object) *metav1.LabelSelector {
	return obj.(*appsv1.DaemonSet).Spec.Selector
}

func (daemonSetOps) setSelector(obj client.Object, sel *metav1.LabelSelector) {
	obj.(*appsv1.DaemonSet).Spec.Selector = sel
}

func (daemonSetOps) copySpec(primary, target client.Object, _ *int32) {
	p, t := primary.(*appsv1.DaemonSet), target.(*appsv1.DaemonSet)
	p.Spec.UpdateStrategy = *t.Spec.UpdateStrategy.DeepCopy()
	p.Spec.MinReadySeconds = t.Spec.MinReadySeconds
	p.Spec.RevisionHistoryLimit = copyPtr(t.Spec.RevisionHistoryLimit)
}

func (daemonSetOps) replicas(client.Object) int32 { return 0 }

func (daemonSetOps) state(obj client.Object, threshold int32) WorkloadState {
	return DaemonSetState(obj.(*appsv1.DaemonSet), threshold)
}
