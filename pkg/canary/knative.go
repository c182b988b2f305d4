package canary

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// knativeKind names the kind in messages.
const knativeKind = "Knative Service"

// conditionReady is the condition type of a ready Knative object.
const conditionReady = "Ready"

// knativeService operates a Knative Service target (serving.knative.dev/v1
// Service, provider knative), as Flagger does. Knative keeps every revision
// of the Service, so nothing is copied: the canary is the latest created
// revision, whose name is the target's revision, and the primary is the
// revision named by the Service's flagger.app/primary-revision
// annotation, which EnsurePrimary sets and Promote moves; the knative
// router splits the traffic between the two. Knative scales revisions
// itself, so nothing is scaled or parked. A revision is ready when its
// Ready condition is True, and stalled when it is False (Knative gave up
// on it).
type knativeService struct{ deps Deps }

func newKnativeService(deps Deps) Workload { return &knativeService{deps: deps} }

// Observe implements Workload.
func (w *knativeService) Observe(ctx context.Context, cd *flaggerv1beta1.Canary) (*State, error) {
	ctx = withCanary(ctx, cd)
	svc, err := w.get(ctx, cd)
	if err != nil {
		return nil, err
	}
	latest := svc.Status.LatestCreatedRevisionName
	st := &State{OwnServices: true, Revision: latest}
	if latest == "" {
		st.Target = WorkloadState{Message: fmt.Sprintf("Knative has not created a revision of %s %s yet", knativeKind, svc.Name)}
	} else if st.Target, err = w.revisionState(ctx, cd.Namespace, latest); err != nil {
		// A spec Knative has not turned into a revision yet is not waited
		// for: revisions are immutable, so the latest created one is what
		// is analysed and promoted, and the next one, once created, wakes
		// the Canary through the Service's status.
		return nil, err
	}
	st.Target.Revision = latest
	primary := svc.Annotations[knativev1.PrimaryRevisionAnnotation]
	if primary == "" {
		st.Primary = WorkloadState{Message: fmt.Sprintf("%s %s has no %s annotation yet: it names the latest revision once Knative has created one",
			knativeKind, svc.Name, knativev1.PrimaryRevisionAnnotation)}
		return st, nil
	}
	if st.Primary, err = w.revisionState(ctx, cd.Namespace, primary); err != nil {
		return nil, err
	}
	st.Primary.Revision = primary
	return st, nil
}

// revisionState judges a Revision by its Ready condition.
func (w *knativeService) revisionState(ctx context.Context, namespace, name string) (WorkloadState, error) {
	rev := &knativev1.Revision{}
	err := w.deps.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, rev)
	if apierrors.IsNotFound(err) {
		return WorkloadState{Message: fmt.Sprintf("Knative Revision %s does not exist", name)}, nil
	}
	if err != nil {
		return WorkloadState{}, fmt.Errorf("reading Knative Revision %s/%s: %w", namespace, name, err)
	}
	s := WorkloadState{Exists: true}
	for _, c := range rev.Status.Conditions {
		if c.Type != conditionReady {
			continue
		}
		switch c.Status {
		case "True":
			s.Ready = true
		case "False":
			s.Stalled = true
			s.Message = fmt.Sprintf("Knative Revision %s failed: %s: %s", name, c.Reason, c.Message)
		default:
			s.Message = fmt.Sprintf("waiting for Knative Revision %s to become ready: %s", name, c.Message)
		}
		return s, nil
	}
	s.Message = fmt.Sprintf("waiting for Knative Revision %s to become ready", name)
	return s, nil
}

// EnsurePrimary implements Workload: a Service without a primary revision
// gets its latest created revision as the primary, once Knative has
// created one.
func (w *knativeService) EnsurePrimary(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	svc, err := w.get(ctx, cd)
	if err != nil {
		return err
	}
	latest := svc.Status.LatestCreatedRevisionName
	if svc.Annotations[knativev1.PrimaryRevisionAnnotation] != "" || latest == "" {
		return nil
	}
	return w.setPrimary(ctx, svc, latest)
}

// Promote implements Workload: the analysed revision becomes the primary,
// while it is still the latest created one.
func (w *knativeService) Promote(ctx context.Context, cd *flaggerv1beta1.Canary, revision string) error {
	ctx = withCanary(ctx, cd)
	svc, err := w.get(ctx, cd)
	if err != nil {
		return err
	}
	if latest := svc.Status.LatestCreatedRevisionName; latest != revision {
		return fmt.Errorf("promoting %s %s/%s: %w: analysed %s, the latest revision is %s", knativeKind, cd.Namespace, svc.Name, ErrRevisionChanged, revision, latest)
	}
	return w.setPrimary(ctx, svc, revision)
}

// setPrimary names revision in the Service's primary-revision annotation.
func (w *knativeService) setPrimary(ctx context.Context, svc *knativev1.Service, revision string) error {
	orig := svc.DeepCopy()
	svc.Annotations = mergeMeta(svc.Annotations, map[string]string{knativev1.PrimaryRevisionAnnotation: revision})
	_, err := patchIfChanged(ctx, w.deps.Client, orig, svc, knativeKind, client.MergeFromWithOptimisticLock{})
	return err
}

// get reads the target from the cache. A missing Service, or a cluster
// without Knative Serving, is a *problem.Problem.
func (w *knativeService) get(ctx context.Context, cd *flaggerv1beta1.Canary) (*knativev1.Service, error) {
	svc := &knativev1.Service{}
	name := cd.Spec.TargetRef.Name
	err := w.deps.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, svc)
	switch {
	case apierrors.IsNotFound(err):
		return nil, problem.New(problem.TargetNotFound, "%s %s not found in namespace %s: create it or fix spec.targetRef", knativeKind, name, cd.Namespace)
	case apimeta.IsNoMatchError(err):
		return nil, problem.New(problem.UnsupportedTarget, "spec.targetRef is a Knative Service, but the cluster does not serve %s: install Knative Serving",
			knativev1.GroupVersion)
	case err != nil:
		return nil, fmt.Errorf("reading %s %s/%s: %w", knativeKind, cd.Namespace, name, err)
	}
	return svc, nil
}

// ScaleTargetUp implements Workload: Knative scales revisions itself.
func (w *knativeService) ScaleTargetUp(context.Context, *flaggerv1beta1.Canary) error { return nil }

// ScaleTargetToZero implements Workload: Knative scales revisions itself.
func (w *knativeService) ScaleTargetToZero(context.Context, *flaggerv1beta1.Canary) error {
	return nil
}

// RestoreTarget implements Workload: the Service is handed back to
// Knative's routing by the knative router's Finalize.
func (w *knativeService) RestoreTarget(context.Context, *flaggerv1beta1.Canary) error { return nil }

// ScalePrimaryAtLeast implements Workload: Knative scales revisions itself.
func (w *knativeService) ScalePrimaryAtLeast(context.Context, *flaggerv1beta1.Canary, int32) error {
	return nil
}

// SyncAutoscaler implements Workload: a Knative Service has no autoscaler
// (SpecProblem refuses one).
func (w *knativeService) SyncAutoscaler(context.Context, *flaggerv1beta1.Canary) error { return nil }
