package router

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	apisixv2 "github.com/sluicedev/sluice/pkg/apis/apisix/v2"
)

// apisixCanaryPriority is the priority of the canary route: above the
// user's route for the same requests, so that APISIX picks the canary
// route while it exists (Flagger's value).
const apisixCanaryPriority = 10000

// errNoRouteRef is returned for a Canary without spec.routeRef.
var errNoRouteRef = errors.New("apisix needs spec.routeRef: it names the ApisixRoute to copy for the canary")

// apisixRouter is the router of provider "apisix". It reads the user's
// ApisixRoute named by spec.routeRef, which it never edits, and owns the
// canary ApisixRoute <route>-<apex>-canary: a copy of the user's HTTP route
// whose one backend is the apex Service, with a higher priority and two
// weighted backends, the primary and canary Services, in its place. APISIX
// then sends those requests through the canary route.
//
// APISIX splits by weight only here: a mirrored split and an A/B test are
// refused. Rendering is pure (renderApisixRoute); the object is written
// with Ensure, so an edit of someone else to its spec is reverted on the
// next Reconcile or SetRoutes.
type apisixRouter struct {
	client client.Client
}

// OwnedObjects implements ObjectOwner.
func (r *apisixRouter) OwnedObjects() []client.Object {
	return []client.Object{&apisixv2.ApisixRoute{}}
}

func newAPISIXRouter(d Deps) Interface {
	return &apisixRouter{client: meshClientOf(d)}
}

// apisixCanaryRouteName is the name of the canary ApisixRoute.
func apisixCanaryRouteName(cd *flaggerv1beta1.Canary) string {
	apex, _, _ := ServiceNames(cd)
	return fmt.Sprintf("%s-%s-canary", cd.Spec.RouteRef.Name, apex)
}

// Reconcile creates or updates the canary ApisixRoute from the user's.
// It keeps the split the canary route holds, or routes all traffic to the
// primary when it is new or its split cannot be read.
func (r *apisixRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.ensureCanaryRoute(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the canary ApisixRoute of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the canary route's backend weights.
func (r *apisixRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureCanaryRoute(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the canary route's backend weights.
func (r *apisixRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	if cd.Spec.RouteRef == nil {
		return Routes{}, fmt.Errorf("canary %s/%s: %w", cd.Namespace, cd.Name, errNoRouteRef)
	}
	route := &apisixv2.ApisixRoute{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: apisixCanaryRouteName(cd)}
	if err := r.client.Get(ctx, key, route); err != nil {
		return Routes{}, fmt.Errorf("reading the canary ApisixRoute %s of Canary %s: %w", key, cd.Name, err)
	}
	routes, err := apisixRoutes(&route.Spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the canary ApisixRoute %s of Canary %s: %w", key, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the canary route is Sluice's own and is deleted
// with the Canary, and the user's route was never edited.
func (r *apisixRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureCanaryRoute reads the user's ApisixRoute and creates or updates
// the canary route with routes, or with the split it holds when routes is
// nil.
func (r *apisixRouter) ensureCanaryRoute(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	ref := cd.Spec.RouteRef
	if ref == nil {
		return configError(errNoRouteRef)
	}
	if ref.Kind != "ApisixRoute" || ref.APIVersion != apisixv2.GroupVersion.String() {
		return configError(fmt.Errorf("spec.routeRef is %s %s, but the apisix provider reads an ApisixRoute of %s", ref.APIVersion, ref.Kind, apisixv2.GroupVersion))
	}
	source := &apisixv2.ApisixRoute{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: ref.Name}, source); err != nil {
		if apierrors.IsNotFound(err) {
			return configError(fmt.Errorf("the ApisixRoute %s/%s named in spec.routeRef does not exist: create it or fix spec.routeRef", cd.Namespace, ref.Name))
		}
		return fmt.Errorf("reading the ApisixRoute %s/%s of spec.routeRef: %w", cd.Namespace, ref.Name, err)
	}
	route := &apisixv2.ApisixRoute{ObjectMeta: metav1.ObjectMeta{Name: apisixCanaryRouteName(cd), Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, route, routes,
		func() (Routes, error) { return apisixRoutes(&route.Spec, cd) },
		func(want Routes) error {
			desired, err := renderApisixRoute(cd, source, want)
			if err != nil {
				return configError(err)
			}
			route.Spec = desired.Spec
			SetMetadata(route, desired.Labels, desired.Annotations, nil)
			return nil
		})
}

// renderApisixRoute returns the canary ApisixRoute for a split: the
// labels and annotations of the user's route source (but kubectl's and
// Flux's), its ingress class, and its one HTTP route whose only backend is
// the apex Service, with priority 10000 and the primary and canary Services
// as weighted backends on the apex's port. It is an error when no HTTP
// route has the apex Service as its only backend.
func renderApisixRoute(cd *flaggerv1beta1.Canary, source *apisixv2.ApisixRoute, routes Routes) (*apisixv2.ApisixRoute, error) {
	switch {
	case routes.Mirrored:
		return nil, errors.New("the apisix provider cannot mirror traffic; remove analysis.mirror")
	case abTesting(cd) && routes.Canary > 0:
		return nil, errors.New("the apisix provider cannot route A/B tests by request match; remove analysis.match or use another provider")
	}
	apex, primary, canary := ServiceNames(cd)
	var found *apisixv2.HTTPRoute
	for i, h := range source.Spec.HTTP {
		for _, b := range h.Backends {
			if b.ServiceName != apex {
				continue
			}
			if len(h.Backends) != 1 {
				return nil, fmt.Errorf("the HTTP route %s of the ApisixRoute %s/%s has %d backends; Sluice splits a route whose only backend is the Service %s",
					h.Name, source.Namespace, source.Name, len(h.Backends), apex)
			}
			found = source.Spec.HTTP[i].DeepCopy()
		}
		if found != nil {
			break
		}
	}
	if found == nil {
		return nil, fmt.Errorf("the ApisixRoute %s/%s has no HTTP route with the backend %s, so there is nothing to route to the canary", source.Namespace, source.Name, apex)
	}
	backend := found.Backends[0]
	found.Priority = apisixCanaryPriority
	found.Backends = []apisixv2.Backend{
		{ServiceName: primary, ServicePort: backend.ServicePort, ResolveGranularity: backend.ResolveGranularity, Subset: backend.Subset, Weight: ptr.To(routes.Primary)},
		{ServiceName: canary, ServicePort: backend.ServicePort, ResolveGranularity: backend.ResolveGranularity, Subset: backend.Subset, Weight: ptr.To(routes.Canary)},
	}
	out := &apisixv2.ApisixRoute{
		ObjectMeta: metav1.ObjectMeta{Name: apisixCanaryRouteName(cd), Namespace: cd.Namespace, Labels: map[string]string{}, Annotations: map[string]string{}},
		Spec:       apisixv2.ApisixRouteSpec{IngressClassName: source.Spec.IngressClassName, HTTP: []apisixv2.HTTPRoute{*found}},
	}
	for k, v := range source.Labels {
		if !strings.Contains(k, fluxAnnotation) {
			out.Labels[k] = v
		}
	}
	for k, v := range source.Annotations {
		if k != lastAppliedAnnotation && !strings.Contains(k, fluxAnnotation) {
			out.Annotations[k] = v
		}
	}
	return out, nil
}

// apisixRoutes reads the split of a canary route's spec.
func apisixRoutes(spec *apisixv2.ApisixRouteSpec, cd *flaggerv1beta1.Canary) (Routes, error) {
	_, primary, canary := ServiceNames(cd)
	if len(spec.HTTP) == 0 {
		return Routes{}, errors.New("it has no HTTP route")
	}
	var backends []weightedBackend
	for _, b := range spec.HTTP[0].Backends {
		backends = append(backends, weightedBackend{name: b.ServiceName, weight: ptr.Deref(b.Weight, 100)})
	}
	return splitOf(backends, primary, canary, false), nil
}
