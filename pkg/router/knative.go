package router

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
)

// KnativePrimaryRevisionAnnotation on a Knative Service names the revision
// that serves as the primary (Flagger's annotation).
const KnativePrimaryRevisionAnnotation = knativev1.PrimaryRevisionAnnotation

// knativeRouter is the router of provider "knative", whose Canaries target
// a Knative Service (serving.knative.dev/v1) rather than a Deployment.
// There is no primary copy of the workload: Knative keeps every revision,
// and the primary is the revision named by the Service's
// flagger.app/primary-revision annotation, the canary the Service's
// latest revision. The router edits the user's Knative Service, as the
// knative provider means: the annotation, and spec.traffic, which it sets
// to the latest revision with the canary's percent and the primary
// revision with the rest.
//
// Knative splits by percent only: a mirrored split and an A/B test are
// refused. The Service is patched only where it differs.
type knativeRouter struct {
	client client.Client
}

func newKnativeRouter(d Deps) Interface {
	return &knativeRouter{client: d.Client}
}

// Reconcile names the primary revision, when the Service has no
// flagger.app/primary-revision annotation yet: its latest created
// revision, which must exist.
func (r *knativeRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	return r.edit(ctx, cd, func(svc *knativev1.Service) error {
		if svc.Annotations[KnativePrimaryRevisionAnnotation] != "" {
			return nil
		}
		if svc.Status.LatestCreatedRevisionName == "" {
			return fmt.Errorf("the Knative Service %s/%s has no revision yet", svc.Namespace, svc.Name)
		}
		if svc.Annotations == nil {
			svc.Annotations = map[string]string{}
		}
		svc.Annotations[KnativePrimaryRevisionAnnotation] = svc.Status.LatestCreatedRevisionName
		return nil
	})
}

// SetRoutes writes the split into the Service's spec.traffic.
func (r *knativeRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	err := r.edit(ctx, cd, func(svc *knativev1.Service) error {
		primary := svc.Annotations[KnativePrimaryRevisionAnnotation]
		if primary == "" {
			return fmt.Errorf("the Knative Service %s/%s has no %s annotation: it is set when the Canary is initialized", svc.Namespace, svc.Name, KnativePrimaryRevisionAnnotation)
		}
		traffic, err := renderKnativeTraffic(cd, primary, routes)
		if err != nil {
			return configError(err)
		}
		svc.Spec.Traffic = traffic
		return nil
	})
	if err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the Service's spec.traffic: the percent
// of the latest revision is the canary's, that of the primary revision the
// primary's.
func (r *knativeRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	svc := &knativev1.Service{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: cd.Spec.TargetRef.Name}
	if err := r.client.Get(ctx, key, svc); err != nil {
		return Routes{}, fmt.Errorf("reading the Knative Service %s of Canary %s: %w", key, cd.Name, err)
	}
	primary := svc.Annotations[KnativePrimaryRevisionAnnotation]
	if primary == "" {
		return Routes{}, fmt.Errorf("the Knative Service %s of Canary %s has no %s annotation", key, cd.Name, KnativePrimaryRevisionAnnotation)
	}
	var out Routes
	for _, t := range svc.Spec.Traffic {
		switch {
		case ptr.Deref(t.LatestRevision, false):
			out.Canary += int(ptr.Deref(t.Percent, 0))
		case t.RevisionName == primary:
			out.Primary += int(ptr.Deref(t.Percent, 0))
		}
	}
	return out, nil
}

// Finalize hands the Service back to Knative's default routing: all
// traffic to the latest revision, and no primary revision annotation.
func (r *knativeRouter) Finalize(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	return r.edit(ctx, cd, func(svc *knativev1.Service) error {
		delete(svc.Annotations, KnativePrimaryRevisionAnnotation)
		svc.Spec.Traffic = []knativev1.TrafficTarget{{LatestRevision: ptr.To(true), Percent: ptr.To[int64](100)}}
		return nil
	})
}

// edit reads the Canary's Knative Service, lets change edit it and sends
// a merge patch of the difference, guarded by the resourceVersion read.
func (r *knativeRouter) edit(ctx context.Context, cd *flaggerv1beta1.Canary, change func(*knativev1.Service) error) error {
	ref := cd.Spec.TargetRef
	if ref.Kind != "Service" || ref.APIVersion != knativev1.GroupVersion.String() {
		return configError(fmt.Errorf("the knative provider routes a Knative Service (%s Service) as spec.targetRef, not %s %s", knativev1.GroupVersion, ref.APIVersion, ref.Kind))
	}
	svc := &knativev1.Service{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: ref.Name}
	if err := r.client.Get(ctx, key, svc); err != nil {
		return fmt.Errorf("reading the Knative Service %s of Canary %s: %w", key, cd.Name, err)
	}
	before := svc.DeepCopy()
	if err := change(svc); err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(before, svc) {
		return nil
	}
	patch := client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})
	if err := r.client.Patch(ctx, svc, patch, client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("patching the Knative Service %s of Canary %s: %w", key, cd.Name, err)
	}
	log.FromContext(ctx).Info("Patched object", "canary", klog.KObj(cd), "kind", "Service", "object", klog.KObj(svc))
	return nil
}

// renderKnativeTraffic returns the traffic targets of a split: the latest
// revision with the canary's percent, then the primary revision with the
// primary's.
func renderKnativeTraffic(cd *flaggerv1beta1.Canary, primaryRevision string, routes Routes) ([]knativev1.TrafficTarget, error) {
	switch {
	case routes.Mirrored:
		return nil, errors.New("knative cannot mirror traffic; remove analysis.mirror")
	case abTesting(cd) && routes.Canary > 0:
		return nil, errors.New("knative cannot route A/B tests by request match; remove analysis.match or use another provider")
	}
	return []knativev1.TrafficTarget{
		{LatestRevision: ptr.To(true), Percent: ptr.To(int64(routes.Canary))},
		{RevisionName: primaryRevision, Percent: ptr.To(int64(routes.Primary))},
	}, nil
}
