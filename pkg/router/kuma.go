package router

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	kumav1alpha1 "github.com/sluicedev/sluice/pkg/apis/kuma/v1alpha1"
	"github.com/sluicedev/sluice/pkg/problem"
)

const (
	// kumaMeshAnnotation on a Canary names the Kuma mesh of its
	// TrafficRoute, as in Flagger; kumaDefaultMesh is the default.
	kumaMeshAnnotation = "kuma.io/mesh"
	kumaDefaultMesh    = "default"
	// kumaServiceTag is the tag that names a Kuma service.
	kumaServiceTag = "kuma.io/service"
)

// kumaRouter is the router of provider "kuma". It owns the TrafficRoute
// <apex> of the mesh named by the Canary's kuma.io/mesh annotation
// (default "default"), which splits the traffic from every service to the
// apex Service between the primary and canary Services by weight. Kuma
// names a Kubernetes Service <name>_<namespace>_svc_<port>.
//
// A TrafficRoute is cluster-scoped, so it cannot have the Canary as owner:
// OwnerAnnotation records the Canary instead, Sluice edits only a
// TrafficRoute that names its Canary there, and Finalize deletes it (the
// garbage collector cannot). The routing splits by weight only: a mirrored
// split and an A/B test are refused. Rendering is pure
// (renderTrafficRoute); an edit of someone else to the spec is reverted on
// the next Reconcile or SetRoutes.
type kumaRouter struct {
	client client.Client
}

func newKumaRouter(d Deps) Interface {
	return &kumaRouter{client: meshClientOf(d)}
}

// Reconcile creates or updates the TrafficRoute. It keeps the split the
// TrafficRoute holds, or routes all traffic to the primary when it is new
// or its split cannot be read.
func (r *kumaRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.ensureTrafficRoute(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the TrafficRoute of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the TrafficRoute.
func (r *kumaRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureTrafficRoute(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the TrafficRoute's weights.
func (r *kumaRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	tr := &kumav1alpha1.TrafficRoute{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: apex}, tr); err != nil {
		return Routes{}, fmt.Errorf("reading the TrafficRoute %s of Canary %s/%s: %w", apex, cd.Namespace, cd.Name, err)
	}
	return kumaRoutes(&tr.Spec, cd), nil
}

// Finalize deletes the TrafficRoute when the Canary owns it: without it,
// Kuma sends the apex Service's traffic to the apex Service's pods.
func (r *kumaRouter) Finalize(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	apex, _, _ := ServiceNames(cd)
	tr := &kumav1alpha1.TrafficRoute{}
	if err := r.client.Get(ctx, client.ObjectKey{Name: apex}, tr); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("reading the TrafficRoute %s of Canary %s/%s: %w", apex, cd.Namespace, cd.Name, err)
	}
	if tr.Annotations[OwnerAnnotation] != kumaOwner(cd) {
		return nil
	}
	if err := r.client.Delete(ctx, tr, client.Preconditions{UID: &tr.UID}); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("deleting the TrafficRoute %s of Canary %s/%s: %w", apex, cd.Namespace, cd.Name, err)
	}
	log.FromContext(ctx).Info("Deleted object", "canary", klog.KObj(cd), "kind", "TrafficRoute", "object", apex)
	return nil
}

// kumaOwner is the value of OwnerAnnotation for a Canary.
func kumaOwner(cd *flaggerv1beta1.Canary) string {
	return cd.Namespace + "/" + cd.Name
}

// ensureTrafficRoute creates or patches the TrafficRoute with routes, or
// with the split it holds when routes is nil. It is Ensure for a
// cluster-scoped object: ownership is OwnerAnnotation, not an owner
// reference.
func (r *kumaRouter) ensureTrafficRoute(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, _, _ := ServiceNames(cd)
	key := client.ObjectKey{Name: apex}
	logger := log.FromContext(ctx).WithValues("canary", klog.KObj(cd), "kind", "TrafficRoute", "object", apex)
	tr := &kumav1alpha1.TrafficRoute{}
	mutate := func(live bool) error {
		want := Routes{Primary: 100}
		if split := kumaRoutes(&tr.Spec, cd); routes != nil {
			want = *routes
		} else if live && checkSplit(cd, split) == nil {
			want = split
		}
		spec, err := renderTrafficRoute(cd, want)
		if err != nil {
			return configError(err)
		}
		tr.Name, tr.Mesh, tr.Spec = apex, kumaMesh(cd), *spec
		setApexMetadata(tr, cd)
		annotations := tr.GetAnnotations()
		if annotations == nil {
			annotations = map[string]string{}
		}
		annotations[OwnerAnnotation] = kumaOwner(cd)
		tr.SetAnnotations(annotations)
		return nil
	}

	if err := r.client.Get(ctx, key, tr); err != nil {
		if !apierrors.IsNotFound(err) {
			return fmt.Errorf("reading TrafficRoute %s: %w", apex, err)
		}
		if err := mutate(false); err != nil {
			return err
		}
		if err := r.client.Create(ctx, tr, client.FieldOwner(FieldOwner)); err != nil {
			return fmt.Errorf("creating TrafficRoute %s: %w", apex, err)
		}
		logger.Info("Created object")
		recordChange(ctx, "created", "TrafficRoute", key)
		return nil
	}
	if owner := tr.Annotations[OwnerAnnotation]; owner != kumaOwner(cd) {
		by := "names no Canary in " + OwnerAnnotation
		if owner != "" {
			by = "belongs to Canary " + owner
		}
		return problem.New(problem.NotOwned, "TrafficRoute %s %s, not to Canary %s: Sluice does not edit objects it does not own; delete it or choose another name",
			apex, by, kumaOwner(cd))
	}
	before := tr.DeepCopy()
	if err := mutate(true); err != nil {
		return err
	}
	diff, err := client.MergeFrom(before).Data(tr)
	if err != nil {
		return fmt.Errorf("computing the patch of TrafficRoute %s: %w", apex, err)
	}
	if string(diff) == "{}" {
		return nil
	}
	if err := r.client.Patch(ctx, tr, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{}), client.FieldOwner(FieldOwner)); err != nil {
		return fmt.Errorf("patching TrafficRoute %s: %w", apex, err)
	}
	logger.Info("Patched object", "patch", string(diff))
	recordChange(ctx, "updated", "TrafficRoute", key)
	return nil
}

// kumaMesh is the mesh of the Canary's TrafficRoute.
func kumaMesh(cd *flaggerv1beta1.Canary) string {
	if m := cd.Annotations[kumaMeshAnnotation]; m != "" {
		return m
	}
	return kumaDefaultMesh
}

// kumaService is the Kuma service name of a Kubernetes Service port.
func kumaService(cd *flaggerv1beta1.Canary, service string) string {
	return fmt.Sprintf("%s_%s_svc_%d", service, cd.Namespace, cd.Spec.Service.Port)
}

// renderTrafficRoute returns the spec of the TrafficRoute <apex> for a
// split: from any source, the traffic to the apex Service's Kuma service
// is split between the primary's and the canary's. A mirrored split and a
// split for an A/B test are refused; an A/B Canary may still be routed
// all to the primary.
func renderTrafficRoute(cd *flaggerv1beta1.Canary, routes Routes) (*kumav1alpha1.TrafficRouteSpec, error) {
	switch {
	case routes.Mirrored:
		return nil, errors.New("kuma TrafficRoutes cannot mirror traffic; remove analysis.mirror")
	case abTesting(cd) && routes.Canary > 0:
		return nil, errors.New("kuma TrafficRoutes cannot route A/B tests by request match; remove analysis.match or use another provider")
	}
	apex, primary, canary := ServiceNames(cd)
	return &kumav1alpha1.TrafficRouteSpec{
		Sources:      []kumav1alpha1.Selector{{Match: map[string]string{kumaServiceTag: "*"}}},
		Destinations: []kumav1alpha1.Selector{{Match: map[string]string{kumaServiceTag: kumaService(cd, apex)}}},
		Conf: &kumav1alpha1.TrafficRouteConf{Split: []kumav1alpha1.TrafficRouteSplit{
			{Weight: percent[uint32](routes.Primary), Destination: map[string]string{kumaServiceTag: kumaService(cd, primary)}},
			{Weight: percent[uint32](routes.Canary), Destination: map[string]string{kumaServiceTag: kumaService(cd, canary)}},
		}},
	}, nil
}

// kumaRoutes reads the split of a TrafficRoute spec.
func kumaRoutes(spec *kumav1alpha1.TrafficRouteSpec, cd *flaggerv1beta1.Canary) Routes {
	_, primary, canary := ServiceNames(cd)
	var backends []weightedBackend
	if spec.Conf != nil {
		for _, s := range spec.Conf.Split {
			backends = append(backends, weightedBackend{name: s.Destination[kumaServiceTag], weight: int(s.Weight)})
		}
	}
	return splitOf(backends, kumaService(cd, primary), kumaService(cd, canary), false)
}
