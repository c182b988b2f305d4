package canary

import (
	"context"
	"fmt"
	"maps"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	kedav1alpha1 "github.com/sluicedev/sluice/pkg/apis/keda/v1alpha1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// kedaMaxReplicas is KEDA's default maxReplicaCount.
const kedaMaxReplicas = 100

// scaledObjectScaler operates a KEDA ScaledObject (keda.sh/v1alpha1), as
// Flagger does: <so>-primary is a copy that scales <target>-primary, whose
// trigger queries point at the primary, and the target's ScaledObject is
// paused (autoscaling.keda.sh/paused-replicas: "0") while the target is
// parked, since KEDA would otherwise scale it from zero on activity.
type scaledObjectScaler struct{ deps Deps }

func newScaledObjectScaler(deps Deps) autoscaler { return &scaledObjectScaler{deps: deps} }

// read implements autoscaler. KEDA's HPA decides the target's replicas, so
// no desired count is reported besides the target's own.
func (s *scaledObjectScaler) read(ctx context.Context, cd *flaggerv1beta1.Canary) (*scaler, error) {
	ref := cd.Spec.AutoscalerRef
	so, err := s.get(ctx, cd.Namespace, ref.Name)
	if apierrors.IsNotFound(err) {
		return nil, problem.New(problem.AutoscalerNotFound,
			"ScaledObject %s not found in namespace %s: create it or fix spec.autoscalerRef", ref.Name, cd.Namespace)
	}
	if err != nil {
		return nil, err
	}
	return &scaler{obj: so, primaryMin: ptr.Deref(primaryScaledObjectSpec(cd, so).MinReplicaCount, 0)}, nil
}

// get reads a ScaledObject from the cache. A cluster without KEDA's CRD is
// a *problem.Problem; other errors wrap the API error, so
// apierrors.IsNotFound still recognises them.
func (s *scaledObjectScaler) get(ctx context.Context, namespace, name string) (*kedav1alpha1.ScaledObject, error) {
	so := &kedav1alpha1.ScaledObject{}
	err := s.deps.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, so)
	if apimeta.IsNoMatchError(err) {
		return nil, problem.New(problem.UnsupportedAutoscaler,
			"spec.autoscalerRef is a ScaledObject, but the cluster does not serve %s: install KEDA or use a HorizontalPodAutoscaler", kedav1alpha1.GroupVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("reading ScaledObject %s/%s: %w", namespace, name, err)
	}
	return so, nil
}

// primaryScaledObjectSpec returns the spec of <so>-primary: the target's,
// scaling <target>-primary, with the replica bounds of
// spec.autoscalerRef.primaryScalerReplicas where set, the HPA KEDA creates
// named <name>-primary when the target's names its HPA, and the trigger
// queries rewritten (see primaryTriggers).
func primaryScaledObjectSpec(cd *flaggerv1beta1.Canary, so *kedav1alpha1.ScaledObject) kedav1alpha1.ScaledObjectSpec {
	spec := *so.Spec.DeepCopy()
	target := kedav1alpha1.ScaleTarget{}
	if spec.ScaleTargetRef != nil {
		target = *spec.ScaleTargetRef
	}
	target.Name = PrimaryName(cd.Spec.TargetRef.Name)
	spec.ScaleTargetRef = &target
	if a := spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil && a.HorizontalPodAutoscalerConfig.Name != "" {
		a.HorizontalPodAutoscalerConfig.Name = PrimaryName(a.HorizontalPodAutoscalerConfig.Name)
	}
	ref := cd.Spec.AutoscalerRef
	if r := ref.PrimaryScalerReplicas; r != nil {
		if r.MinReplicas != nil {
			spec.MinReplicaCount = ptr.To(*r.MinReplicas)
		}
		if r.MaxReplicas != nil {
			spec.MaxReplicaCount = ptr.To(*r.MaxReplicas)
		}
	}
	primaryTriggers(spec.Triggers, cd.Spec.TargetRef.Name, ref.PrimaryScalerQueries)
	return spec
}

// primaryTriggers rewrites the "query" metadata of the primary's triggers,
// as Flagger does. With primaryScalerQueries, a trigger whose name is a key
// gets that query, and the others keep theirs. Without it, every query has
// <target> and <target>-canary replaced by <target>-primary, a best effort
// that a query naming the target differently defeats: such a ScaledObject
// needs named triggers and primaryScalerQueries.
func primaryTriggers(triggers []kedav1alpha1.ScaleTriggers, target string, queries map[string]string) {
	rename := strings.NewReplacer(target+"-canary", PrimaryName(target), target, PrimaryName(target))
	for i := range triggers {
		t := &triggers[i]
		if queries != nil {
			q, ok := queries[t.Name]
			if !ok || t.Name == "" {
				continue
			}
			if t.Metadata == nil {
				t.Metadata = map[string]string{}
			}
			t.Metadata["query"] = q
			continue
		}
		if q, ok := t.Metadata["query"]; ok {
			t.Metadata["query"] = rename.Replace(q)
		}
	}
}

// primaryScaledObjectMeta filters the labels or annotations of the target's
// ScaledObject for its primary copy: all of them (KEDA reads some, such as
// scaledobject.keda.sh/transfer-hpa-ownership, from the annotations),
// except Flux's, the controllers' own and the pause annotations, which
// would stop the primary's autoscaling.
func primaryScaledObjectMeta(m map[string]string) map[string]string {
	out := filterMeta(m, []string{"*"})
	delete(out, kedav1alpha1.PausedReplicasAnnotation)
	delete(out, kedav1alpha1.PausedAnnotation)
	return out
}

// syncPrimary implements autoscaler for <so>-primary.
func (s *scaledObjectScaler) syncPrimary(ctx context.Context, cd *flaggerv1beta1.Canary, sc *scaler, update bool) error {
	so := sc.obj.(*kedav1alpha1.ScaledObject)
	want := &kedav1alpha1.ScaledObject{
		ObjectMeta: metav1.ObjectMeta{
			Name:        PrimaryName(so.Name),
			Namespace:   so.Namespace,
			Labels:      primaryScaledObjectMeta(so.Labels),
			Annotations: primaryScaledObjectMeta(so.Annotations),
		},
		Spec: primaryScaledObjectSpec(cd, so),
	}
	// Pause annotations set on the copy by hand are left: removing them
	// is for whoever set them.
	return syncPrimaryCopy(ctx, s.deps.Client, cd, want, scaledObjectKind, update, s.get,
		func(cur, want *kedav1alpha1.ScaledObject) { cur.Spec = want.Spec })
}

// raisePrimaryMin implements autoscaler: minReplicaCount of <so>-primary.
func (s *scaledObjectScaler) raisePrimaryMin(ctx context.Context, cd *flaggerv1beta1.Canary, n int32) error {
	cur, err := s.get(ctx, cd.Namespace, PrimaryName(cd.Spec.AutoscalerRef.Name))
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	want := min(n, ptr.Deref(cur.Spec.MaxReplicaCount, kedaMaxReplicas))
	if ptr.Deref(cur.Spec.MinReplicaCount, 0) >= want {
		return nil
	}
	orig := cur.DeepCopy()
	cur.Spec.MinReplicaCount = ptr.To(want)
	_, err = patchIfChanged(ctx, s.deps.Client, orig, cur, scaledObjectKind)
	return err
}

// minReplicas implements autoscaler: the target's minReplicaCount.
func (s *scaledObjectScaler) minReplicas(ctx context.Context, cd *flaggerv1beta1.Canary) (int32, error) {
	so, err := s.get(ctx, cd.Namespace, cd.Spec.AutoscalerRef.Name)
	if apierrors.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return ptr.Deref(so.Spec.MinReplicaCount, 0), nil
}

// pause implements autoscaler: it sets (on) or removes (off) the
// autoscaling.keda.sh/paused-replicas: "0" annotation of the target's
// ScaledObject. A missing ScaledObject has nothing to pause.
func (s *scaledObjectScaler) pause(ctx context.Context, cd *flaggerv1beta1.Canary, on bool) error {
	so, err := s.get(ctx, cd.Namespace, cd.Spec.AutoscalerRef.Name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	orig := so.DeepCopy()
	annotations := maps.Clone(so.Annotations)
	if on {
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[kedav1alpha1.PausedReplicasAnnotation] = "0"
	} else {
		delete(annotations, kedav1alpha1.PausedReplicasAnnotation)
	}
	so.Annotations = annotations
	_, err = patchIfChanged(ctx, s.deps.Client, orig, so, scaledObjectKind)
	return err
}
