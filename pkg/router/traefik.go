package router

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	traefikv1alpha1 "github.com/sluicedev/sluice/pkg/apis/traefik/v1alpha1"
)

// traefikRouter is the router of provider "traefik". It owns the
// TraefikService <apex>, which the user's IngressRoutes name as their
// service: a weighted round robin over the primary and canary Services,
// or, for a mirrored split, the primary Service with the canary as mirror.
//
// A TraefikService spreads requests; it does not match them, so an A/B
// test is refused (the user's IngressRoute holds the matches). The
// Canary's hosts, matches, timeout, retries and header operations do not
// apply to it and are left to the IngressRoute. Rendering is pure
// (renderTraefikService); the object is written with Ensure, so an edit of
// someone else to the spec is reverted on the next Reconcile or SetRoutes.
type traefikRouter struct {
	client client.Client
}

// OwnedObjects implements ObjectOwner.
func (r *traefikRouter) OwnedObjects() []client.Object {
	return []client.Object{&traefikv1alpha1.TraefikService{}}
}

func newTraefikRouter(d Deps) Interface {
	return &traefikRouter{client: meshClientOf(d)}
}

// Reconcile creates or updates the TraefikService. It keeps the split the
// TraefikService holds, or routes all traffic to the primary when it is
// new or its split cannot be read.
func (r *traefikRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.ensureTraefikService(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the TraefikService of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the TraefikService.
func (r *traefikRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureTraefikService(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the TraefikService's weights, or from
// its mirroring.
func (r *traefikRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	ts := &traefikv1alpha1.TraefikService{}
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, ts); err != nil {
		return Routes{}, fmt.Errorf("reading the TraefikService %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	routes, err := traefikRoutes(&ts.Spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the TraefikService %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the TraefikService is Sluice's own and is deleted
// with the Canary.
func (r *traefikRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureTraefikService creates or updates the TraefikService with routes,
// or with the split it holds when routes is nil.
func (r *traefikRouter) ensureTraefikService(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, _, _ := ServiceNames(cd)
	ts := &traefikv1alpha1.TraefikService{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, ts, routes,
		func() (Routes, error) { return traefikRoutes(&ts.Spec, cd) },
		func(want Routes) error {
			spec, err := renderTraefikService(cd, want)
			if err != nil {
				return configError(err)
			}
			ts.Spec = *spec
			setApexMetadata(ts, cd)
			return nil
		})
}

// renderTraefikService returns the spec of the TraefikService <apex> for
// a split: the primary and canary Services weighted by the split or, for
// a mirrored split, the primary Service with the canary as mirror of
// analysis.mirrorWeight percent of the requests (100 when unset). A
// mirrored split must send all requests to the primary, and an A/B test
// may only send them all to the primary.
func renderTraefikService(cd *flaggerv1beta1.Canary, routes Routes) (*traefikv1alpha1.TraefikServiceSpec, error) {
	_, primary, canary := ServiceNames(cd)
	port := cd.Spec.Service.Port
	switch {
	case abTesting(cd) && routes.Canary > 0:
		return nil, errors.New("a TraefikService cannot route A/B tests by request match; remove analysis.match or use another provider")
	case routes.Mirrored && routes.Canary > 0:
		return nil, fmt.Errorf("a TraefikService mirrors to the canary only while the primary answers all requests, not %d%%", routes.Primary)
	case routes.Mirrored:
		percent := 100
		if a := cd.Spec.Analysis; a != nil && a.MirrorWeight > 0 {
			percent = int(a.MirrorWeight)
		}
		return &traefikv1alpha1.TraefikServiceSpec{Mirroring: &traefikv1alpha1.Mirroring{
			Name: primary, Port: port,
			Mirrors: []traefikv1alpha1.MirrorService{{Name: canary, Port: port, Percent: percent}},
		}}, nil
	}
	return &traefikv1alpha1.TraefikServiceSpec{Weighted: &traefikv1alpha1.WeightedRoundRobin{Services: []traefikv1alpha1.WeightedService{
		{Name: primary, Port: port, Weight: routes.Primary},
		{Name: canary, Port: port, Weight: routes.Canary},
	}}}, nil
}

// traefikRoutes reads the split of a TraefikService spec (see GetRoutes):
// a mirroring sends all requests to its Service.
func traefikRoutes(spec *traefikv1alpha1.TraefikServiceSpec, cd *flaggerv1beta1.Canary) (Routes, error) {
	_, primary, canary := ServiceNames(cd)
	var backends []weightedBackend
	mirrored := false
	switch {
	case spec.Weighted != nil:
		for _, s := range spec.Weighted.Services {
			backends = append(backends, weightedBackend{name: s.Name, weight: s.Weight})
		}
	case spec.Mirroring != nil:
		backends = []weightedBackend{{name: spec.Mirroring.Name, weight: 100}}
		for _, m := range spec.Mirroring.Mirrors {
			mirrored = mirrored || m.Name == canary
		}
	default:
		return Routes{}, errors.New("it is neither weighted nor mirroring")
	}
	return splitOf(backends, primary, canary, mirrored), nil
}
