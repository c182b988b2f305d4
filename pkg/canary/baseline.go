package canary

import (
	"context"
	"fmt"
	"maps"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// The baseline (analysis.baseline) is a fresh copy of the primary that
// runs beside the canary during an analysis, so that a comparison sets the
// new version against the old one under the same conditions: both started
// at the same time, with the same replica count and the same share of the
// traffic. The state machine decides when it exists; this file creates,
// updates and deletes it.

const (
	// baselineSuffix is appended to the target's name and to the selector
	// label value for the baseline.
	baselineSuffix = "-baseline"

	// BaselineRevisionAnnotation on the baseline's pod template records
	// the analysed (canary) revision the baseline was started for. A new
	// analysed revision changes it, which rolls the baseline's pods, so
	// that they start with the new canary's.
	BaselineRevisionAnnotation = "sluice.flagger.app/baseline-for"
)

// BaselineName returns the name of the baseline copy of a target.
func BaselineName(name string) string { return name + baselineSuffix }

// observeBaseline reports <target>-baseline when the Canary controls it.
// One of the name that someone else controls is reported as missing, and
// is a problem.NotOwned when the Canary asks for a baseline: Sluice would
// have to write it.
func (e *engine) observeBaseline(ctx context.Context, cd *flaggerv1beta1.Canary) (WorkloadState, error) {
	name := BaselineName(cd.Spec.TargetRef.Name)
	obj := e.ops.newObject()
	err := e.deps.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, obj)
	switch {
	case apierrors.IsNotFound(err):
		return missingState(e.ops.kind(), name), nil
	case err != nil:
		return WorkloadState{}, fmt.Errorf("reading %s %s/%s: %w", e.ops.kind(), cd.Namespace, name, err)
	case !controlledBy(obj, cd):
		st := missingState(e.ops.kind(), name)
		if wantsBaseline(cd) {
			return st, problem.New(problem.NotOwned,
				"%s %s/%s exists and is not controlled by Canary %s: analysis.baseline runs the baseline under that name; delete or rename it, or remove analysis.baseline",
				e.ops.kind(), cd.Namespace, name, cd.Name)
		}
		return st, nil
	}
	st := e.ops.state(obj, ReadyThreshold(cd, false))
	st.Revision = e.ops.podTemplate(obj).Annotations[BaselineRevisionAnnotation]
	return st, nil
}

// wantsBaseline reports whether the Canary asks for a baseline.
func wantsBaseline(cd *flaggerv1beta1.Canary) bool {
	return cd.Spec.Analysis != nil && cd.Spec.Analysis.Baseline
}

// controlledBy reports whether the Canary is the controller of obj.
func controlledBy(obj client.Object, cd *flaggerv1beta1.Canary) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == cd.UID
}

// EnsureBaseline implements Workload. It reads the target and the primary
// from the cache only: it runs at every reconcile of an analysis.
func (w *deployment) EnsureBaseline(ctx context.Context, cd *flaggerv1beta1.Canary, revision string) error {
	ctx = withCanary(ctx, cd)
	obj, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	target := obj.(*appsv1.Deployment)
	label, value, err := w.selectorLabel(target)
	if err != nil {
		return err
	}
	primary, found, err := w.getPrimary(ctx, cd)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("creating the baseline of %s/%s: the primary %s does not exist", cd.Namespace, target.Name, PrimaryName(target.Name))
	}
	replicas := ptr.Deref(target.Spec.Replicas, 1)
	if replicas == 0 {
		// ScaleTargetUp has not been seen in the cache yet: take what it
		// gives the canary.
		if replicas, err = w.scaledUpReplicas(ctx, cd); err != nil {
			return err
		}
	}
	want := baselineOf(primary.(*appsv1.Deployment), target.Name, label, value, revision, replicas)

	cur := &appsv1.Deployment{}
	err = w.deps.Client.Get(ctx, client.ObjectKeyFromObject(want), cur)
	if apierrors.IsNotFound(err) {
		return createOwned(ctx, w.deps.Client, cd, want, "Deployment")
	}
	if err != nil {
		return fmt.Errorf("reading Deployment %s/%s: %w", want.Namespace, want.Name, err)
	}
	if !controlledBy(cur, cd) {
		return problem.New(problem.NotOwned,
			"Deployment %s/%s exists and is not controlled by Canary %s: analysis.baseline runs the baseline under that name; delete or rename it, or remove analysis.baseline",
			cur.Namespace, cur.Name, cd.Name)
	}
	// The selector cannot change; everything else follows the primary.
	orig := cur.DeepCopy()
	cur.Labels = mergeMeta(cur.Labels, want.Labels)
	cur.Annotations = mergeMeta(cur.Annotations, want.Annotations)
	cur.Spec.Template = want.Spec.Template
	deploymentOps{}.copySpec(cur, want, want.Spec.Replicas)
	patched, err := patchIfChanged(ctx, w.deps.Client, orig, cur, "Deployment", client.MergeFromWithOptimisticLock{})
	if err == nil && patched && orig.Spec.Template.Annotations[BaselineRevisionAnnotation] != revision {
		log.FromContext(ctx).Info("restarted the baseline for a new revision", "name", cur.Name, "revision", revision)
	}
	return err
}

// RemoveBaseline implements Workload. The deletion is conditional on the
// UID read, so that a baseline someone else created in the meantime under
// the same name is never deleted.
func (w *deployment) RemoveBaseline(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	cur := &appsv1.Deployment{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: BaselineName(cd.Spec.TargetRef.Name)}
	if err := w.deps.Client.Get(ctx, key, cur); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading Deployment %s: %w", key, err)
	}
	if !controlledBy(cur, cd) {
		return nil
	}
	err := w.deps.Client.Delete(ctx, cur, client.Preconditions{UID: &cur.UID}, client.PropagationPolicy(metav1.DeletePropagationBackground))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("deleting the baseline Deployment %s: %w", key, err)
	}
	log.FromContext(ctx).Info("deleted the baseline", "name", key.Name)
	return nil
}

// baselineOf returns the baseline Deployment of a primary: its pod
// template and rollout settings, with the selector label value
// <value>-baseline in place of <value>-primary, without the primary's
// flagger-id and revision, and with the analysed revision it runs beside.
func baselineOf(primary *appsv1.Deployment, target, label, value, revision string, replicas int32) *appsv1.Deployment {
	out := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{
		Name:        BaselineName(target),
		Namespace:   primary.Namespace,
		Labels:      filterMeta(primary.Labels, []string{"*"}),
		Annotations: filterMeta(primary.Annotations, []string{"*"}),
	}}
	out.Labels[label] = value + baselineSuffix
	delete(out.Annotations, RevisionAnnotation)
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	sel := primary.Spec.Selector.DeepCopy()
	if sel == nil {
		sel = &metav1.LabelSelector{}
	}
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[label] = value + baselineSuffix
	out.Spec.Selector = sel
	out.Spec.Template = *baselineTemplate(&primary.Spec.Template, label, value, revision)
	deploymentOps{}.copySpec(out, primary, ptr.To(replicas))
	return out
}

// baselineTemplate returns the baseline's pod template: the primary's,
// pointed at the baseline's pods where it selected the primary's.
func baselineTemplate(primary *corev1.PodTemplateSpec, label, value, revision string) *corev1.PodTemplateSpec {
	t := primary.DeepCopy()
	if t.Labels == nil {
		t.Labels = map[string]string{}
	}
	t.Labels[label] = value + baselineSuffix
	t.Annotations = maps.Clone(t.Annotations)
	if t.Annotations == nil {
		t.Annotations = map[string]string{}
	}
	delete(t.Annotations, FlaggerIDAnnotation)
	t.Annotations[BaselineRevisionAnnotation] = revision
	retargetPodSelectors(&t.Spec, label, value+primarySuffix, value+baselineSuffix)
	return t
}

// EnsureBaseline implements Workload: a DaemonSet runs one pod per node,
// so it has no replica count to give a baseline beside the canary.
func (w *daemonSet) EnsureBaseline(_ context.Context, cd *flaggerv1beta1.Canary, _ string) error {
	return problem.New(problem.UnsupportedTarget,
		"spec.analysis.baseline: DaemonSet %s runs one pod per node and cannot have a baseline beside the canary; remove analysis.baseline", cd.Spec.TargetRef.Name)
}

// RemoveBaseline implements Workload: a DaemonSet never has a baseline.
func (w *daemonSet) RemoveBaseline(context.Context, *flaggerv1beta1.Canary) error { return nil }

// EnsureBaseline implements Workload: a Service target has no pods to copy
// for a baseline.
func (w *service) EnsureBaseline(_ context.Context, cd *flaggerv1beta1.Canary, _ string) error {
	return problem.New(problem.UnsupportedTarget,
		"spec.analysis.baseline: the target %s is a Service, which has no pods of its own to copy for a baseline; remove analysis.baseline", cd.Spec.TargetRef.Name)
}

// RemoveBaseline implements Workload: a Service target never has a baseline.
func (w *service) RemoveBaseline(context.Context, *flaggerv1beta1.Canary) error { return nil }

// EnsureBaseline implements Workload: Knative runs the revisions; a
// baseline beside them is not supported.
func (w *knativeService) EnsureBaseline(_ context.Context, cd *flaggerv1beta1.Canary, _ string) error {
	return problem.New(problem.UnsupportedTarget,
		"spec.analysis.baseline: the target %s is a Knative Service, whose revisions Knative runs; a baseline beside them is not supported: remove analysis.baseline", cd.Spec.TargetRef.Name)
}

// RemoveBaseline implements Workload: a Knative target never has a baseline.
func (w *knativeService) RemoveBaseline(context.Context, *flaggerv1beta1.Canary) error { return nil }
