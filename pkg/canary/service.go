package canary

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// serviceKind names the kind in messages.
const serviceKind = "Service"

// canarySuffix is appended to the name of a Service target's canary copy.
const canarySuffix = "-canary"

// service operates a Kubernetes Service target (v1 Service), as Flagger's
// Service targets: there is no workload to copy or scale. The target
// Service is copied to <name>-primary, which receives the target's spec
// only on promotion, and to <name>-canary, which follows the target during
// a release; the router splits the traffic between the two copies. Both
// copies select what the target selects, so a new revision is a change of
// the target Service's spec, such as its selector or ports. Both are
// always ready: Sluice does not look behind a Service.
type service struct{ deps Deps }

func newService(deps Deps) Workload { return &service{deps: deps} }

// Observe implements Workload. A missing target is a problem, reported
// with the primary copy, so that a release in flight can still be rolled
// back; a copy the Canary does not control is a problem.NotOwned.
func (w *service) Observe(ctx context.Context, cd *flaggerv1beta1.Canary) (*State, error) {
	ctx = withCanary(ctx, cd)
	primary, err := w.getCopy(ctx, cd, PrimaryName(cd.Spec.TargetRef.Name))
	if err != nil {
		return nil, err
	}
	if _, err := w.getCopy(ctx, cd, cd.Spec.TargetRef.Name+canarySuffix); err != nil {
		return nil, err
	}
	st := &State{OwnServices: true}
	if primary != nil {
		st.Primary = WorkloadState{Exists: true, Ready: true, Revision: primary.Annotations[RevisionAnnotation]}
	} else {
		st.Primary = missingState(serviceKind, PrimaryName(cd.Spec.TargetRef.Name))
	}
	target, err := w.getTarget(ctx, cd)
	if problem.Is(err, problem.TargetNotFound) {
		st.Target = missingState(serviceKind, cd.Spec.TargetRef.Name)
		return st, err
	}
	if err != nil {
		return nil, err
	}
	if st.Revision, err = serviceRevision(target); err != nil {
		return nil, err
	}
	st.Target = WorkloadState{Exists: true, Ready: true, Revision: st.Revision}
	if primary != nil && st.Primary.Revision == "" {
		// A copy Sluice did not write (Flagger's, at a takeover) holds the
		// target's revision when it is what a promotion would write.
		want := w.copyOf(cd, target, primary)
		if apiequality.Semantic.DeepEqual(want.Spec, primary.Spec) {
			st.Primary.Revision = st.Revision
		}
	}
	return st, nil
}

// EnsurePrimary implements Workload: it creates <name>-primary when it is
// missing, and creates or updates <name>-canary.
func (w *service) EnsurePrimary(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	target, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	if err := w.syncCopy(ctx, cd, target, PrimaryName(target.Name), false); err != nil {
		return err
	}
	return w.syncCopy(ctx, cd, target, target.Name+canarySuffix, true)
}

// Promote implements Workload: <name>-primary gets the target's spec,
// labels and annotations, when the target still holds revision.
func (w *service) Promote(ctx context.Context, cd *flaggerv1beta1.Canary, revision string) error {
	ctx = withCanary(ctx, cd)
	target, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	rev, err := serviceRevision(target)
	if err != nil {
		return err
	}
	if rev != revision {
		return fmt.Errorf("promoting Service %s/%s: %w: analysed %s, the target holds %s", cd.Namespace, target.Name, ErrRevisionChanged, revision, rev)
	}
	return w.syncCopy(ctx, cd, target, PrimaryName(target.Name), true)
}

// ScaleTargetUp implements Workload: the canary of a Service target is its
// copy <name>-canary, which gets the target's spec for the analysis.
func (w *service) ScaleTargetUp(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	ctx = withCanary(ctx, cd)
	target, err := w.getTarget(ctx, cd)
	if err != nil {
		return err
	}
	return w.syncCopy(ctx, cd, target, target.Name+canarySuffix, true)
}

// ScaleTargetToZero implements Workload: a Service has nothing to park.
func (w *service) ScaleTargetToZero(context.Context, *flaggerv1beta1.Canary) error { return nil }

// RestoreTarget implements Workload: the target Service was never changed.
func (w *service) RestoreTarget(context.Context, *flaggerv1beta1.Canary) error { return nil }

// ScalePrimaryAtLeast implements Workload: a Service has no replicas.
func (w *service) ScalePrimaryAtLeast(context.Context, *flaggerv1beta1.Canary, int32) error {
	return nil
}

// SyncAutoscaler implements Workload: a Service target has no autoscaler
// (SpecProblem refuses one).
func (w *service) SyncAutoscaler(context.Context, *flaggerv1beta1.Canary) error { return nil }

// getTarget reads the target Service from the cache.
func (w *service) getTarget(ctx context.Context, cd *flaggerv1beta1.Canary) (*corev1.Service, error) {
	svc := &corev1.Service{}
	name := cd.Spec.TargetRef.Name
	err := w.deps.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, svc)
	if apierrors.IsNotFound(err) {
		return nil, problem.New(problem.TargetNotFound, "Service %s not found in namespace %s: create it or fix spec.targetRef", name, cd.Namespace)
	}
	if err != nil {
		return nil, fmt.Errorf("reading Service %s/%s: %w", cd.Namespace, name, err)
	}
	return svc, nil
}

// getCopy reads a copy of the target from the cache: nil when it does not
// exist, a problem.NotOwned when the Canary does not control it.
func (w *service) getCopy(ctx context.Context, cd *flaggerv1beta1.Canary, name string) (*corev1.Service, error) {
	svc := &corev1.Service{}
	err := w.deps.Client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: name}, svc)
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Service %s/%s: %w", cd.Namespace, name, err)
	}
	if ref := metav1.GetControllerOfNoCopy(svc); ref == nil || ref.UID != cd.UID {
		return nil, problem.New(problem.NotOwned,
			"Service %s/%s exists and is not controlled by Canary %s: Sluice copies the target Service %s there and does not edit objects it does not own; delete it or rename the target",
			cd.Namespace, name, cd.Name, cd.Spec.TargetRef.Name)
	}
	return svc, nil
}

// syncCopy creates the copy of the target named name when it is missing
// and, when update is set, gives an existing one the target's spec, labels
// and annotations. The primary copy records the revision it holds.
func (w *service) syncCopy(ctx context.Context, cd *flaggerv1beta1.Canary, target *corev1.Service, name string, update bool) error {
	cur, err := w.getCopy(ctx, cd, name)
	if err != nil {
		return err
	}
	if cur != nil && !update {
		return nil
	}
	want := w.copyOf(cd, target, cur)
	want.Name, want.Namespace = name, cd.Namespace
	if name == PrimaryName(target.Name) {
		rev, err := serviceRevision(target)
		if err != nil {
			return err
		}
		want.Annotations[RevisionAnnotation] = rev
	}
	if cur == nil {
		return createOwned(ctx, w.deps.Client, cd, want, serviceKind)
	}
	orig := cur.DeepCopy()
	cur.Labels = mergeMeta(cur.Labels, want.Labels)
	cur.Annotations = mergeMeta(cur.Annotations, want.Annotations)
	cur.Spec = want.Spec
	_, err = patchIfChanged(ctx, w.deps.Client, orig, cur, serviceKind, client.MergeFromWithOptimisticLock{})
	return err
}

// copyOf returns a copy of the target Service: its spec, labels and
// annotations (without Flux's and the controllers' own), and
// spec.service.trafficDistribution when set. The values the API server
// allocates (cluster IPs, node ports, the health check node port) are
// those of cur, the live copy, or left for the server to allocate when
// there is none; a headless target gives a headless copy.
func (w *service) copyOf(cd *flaggerv1beta1.Canary, target, cur *corev1.Service) *corev1.Service {
	spec := target.Spec.DeepCopy()
	if td := cd.Spec.Service.TrafficDistribution; td != "" {
		spec.TrafficDistribution = ptr.To(td)
	}
	switch {
	case cur != nil:
		spec.ClusterIP, spec.ClusterIPs = cur.Spec.ClusterIP, cur.Spec.ClusterIPs
		spec.IPFamilies, spec.IPFamilyPolicy = cur.Spec.IPFamilies, cur.Spec.IPFamilyPolicy
		spec.HealthCheckNodePort = cur.Spec.HealthCheckNodePort
	case spec.ClusterIP == corev1.ClusterIPNone:
		spec.ClusterIPs = nil
	default:
		spec.ClusterIP, spec.ClusterIPs = "", nil
		spec.HealthCheckNodePort = 0
	}
	for i := range spec.Ports {
		p := &spec.Ports[i]
		p.NodePort = 0
		if cur == nil {
			continue
		}
		for _, c := range cur.Spec.Ports {
			if c.Port == p.Port && c.Protocol == p.Protocol {
				p.NodePort = c.NodePort
			}
		}
	}
	all := []string{"*"}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Labels: filterMeta(target.Labels, all), Annotations: filterMeta(target.Annotations, all)},
		Spec:       *spec,
	}
}

// serviceRevision is the revision of a Service target: the first 16 hex
// digits of a SHA-256 over the JSON encoding of its spec.
func serviceRevision(svc *corev1.Service) (string, error) {
	data, err := json.Marshal(svc.Spec)
	if err != nil {
		return "", fmt.Errorf("encoding the spec of Service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])[:revisionLength], nil
}
