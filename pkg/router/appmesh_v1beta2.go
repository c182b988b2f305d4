package router

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	appmeshv1beta2 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta2"
)

// appMeshV1beta2Router is the router of provider "appmesh:v1beta2", for
// the App Mesh controller (appmesh.k8s.aws/v1beta2), which finds the mesh
// of each object by its namespace. It owns, for a Canary with apex Service
// <apex>:
//
//   - the VirtualNodes <apex>-primary and <apex>-canary, which select the
//     primary's and the canary's pods and are found at the primary and
//     canary Services' host names;
//   - the VirtualRouter <apex>, which splits the requests between the two
//     nodes, and <apex>-canary, which sends every request to the canary;
//   - the VirtualServices <apex> and <apex>-canary, provided by those
//     routers; the first carries the App Mesh gateway's annotations when
//     spec.service.hosts are set.
//
// A/B tests route by header as with provider appmesh; mirroring is
// refused. The fields the App Mesh controller sets (awsName, meshRef) are
// kept as found. The objects are written with Ensure, so an edit of
// someone else to their spec is reverted on the next Reconcile or
// SetRoutes.
type appMeshV1beta2Router struct {
	client client.Client
}

// OwnedObjects implements ObjectOwner.
func (r *appMeshV1beta2Router) OwnedObjects() []client.Object {
	return []client.Object{&appmeshv1beta2.VirtualNode{}, &appmeshv1beta2.VirtualRouter{}, &appmeshv1beta2.VirtualService{}}
}

func newAppMeshV1beta2Router(d Deps) Interface {
	return &appMeshV1beta2Router{client: meshClientOf(d)}
}

// Reconcile creates or updates the virtual nodes, routers and services.
// The router <apex> keeps the split it holds, or routes all traffic to the
// primary when it is new or its split cannot be read.
func (r *appMeshV1beta2Router) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) error {
	apex, primary, canary := ServiceNames(cd)
	for _, node := range []struct {
		name     string
		selector map[string]string
	}{{primary, primarySelector(t)}, {canary, canarySelector(t)}} {
		vn := &appmeshv1beta2.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: node.name, Namespace: cd.Namespace}}
		if _, err := Ensure(ctx, r.client, cd, vn, func() error {
			spec, err := renderAppMeshV1beta2VirtualNode(cd, node.name, node.selector)
			if err != nil {
				return configError(err)
			}
			spec.AWSName, spec.MeshRef = vn.Spec.AWSName, vn.Spec.MeshRef
			vn.Spec = *spec
			setApexMetadata(vn, cd)
			return nil
		}); err != nil {
			return fmt.Errorf("reconciling the App Mesh routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
		}
	}
	vr := &appmeshv1beta2.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Name: canary, Namespace: cd.Namespace}}
	if _, err := Ensure(ctx, r.client, cd, vr, func() error {
		spec, err := renderAppMeshVirtualRouter(cd, canary, Routes{Canary: 100})
		if err != nil {
			return configError(err)
		}
		spec.AWSName, spec.MeshRef = vr.Spec.AWSName, vr.Spec.MeshRef
		vr.Spec = *spec
		return nil
	}); err != nil {
		return fmt.Errorf("reconciling the App Mesh routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	if err := r.ensureApexRouter(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the App Mesh routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	for _, service := range []string{apex, canary} {
		vs := &appmeshv1beta2.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: service, Namespace: cd.Namespace}}
		if _, err := Ensure(ctx, r.client, cd, vs, func() error {
			vs.Spec = appmeshv1beta2.VirtualServiceSpec{
				AWSName: vs.Spec.AWSName, MeshRef: vs.Spec.MeshRef,
				Provider: &appmeshv1beta2.VirtualServiceProvider{VirtualRouter: &appmeshv1beta2.VirtualRouterServiceProvider{
					VirtualRouterRef: &appmeshv1beta2.Reference{Name: service},
				}},
			}
			if service == apex {
				SetMetadata(vs, nil, appMeshGatewayAnnotations(cd), nil)
			}
			return nil
		}); err != nil {
			return fmt.Errorf("reconciling the App Mesh routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
		}
	}
	return nil
}

// SetRoutes writes the split into the routes of the router <apex>.
func (r *appMeshV1beta2Router) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureApexRouter(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the first route of the router <apex>.
func (r *appMeshV1beta2Router) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	vr := &appmeshv1beta2.VirtualRouter{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: apex}
	if err := r.client.Get(ctx, key, vr); err != nil {
		return Routes{}, fmt.Errorf("reading the VirtualRouter %s of Canary %s: %w", key, cd.Name, err)
	}
	routes, err := appMeshV1beta2Routes(&vr.Spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the VirtualRouter %s of Canary %s: %w", key, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the App Mesh objects are Sluice's own and are
// deleted with the Canary.
func (r *appMeshV1beta2Router) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureApexRouter creates or updates the router <apex> with routes, or
// with the split it holds when routes is nil.
func (r *appMeshV1beta2Router) ensureApexRouter(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, _, _ := ServiceNames(cd)
	vr := &appmeshv1beta2.VirtualRouter{ObjectMeta: metav1.ObjectMeta{Name: apex, Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, vr, routes,
		func() (Routes, error) { return appMeshV1beta2Routes(&vr.Spec, cd) },
		func(want Routes) error {
			spec, err := renderAppMeshVirtualRouter(cd, apex, want)
			if err != nil {
				return configError(err)
			}
			spec.AWSName, spec.MeshRef = vr.Spec.AWSName, vr.Spec.MeshRef
			vr.Spec = *spec
			return nil
		})
}

// appMeshPort is the port of the nodes and routers: spec.service's
// numeric targetPort, else its port.
func appMeshPort(cd *flaggerv1beta1.Canary) int64 {
	if tp := cd.Spec.Service.TargetPort; tp.IntVal > 0 {
		return int64(tp.IntVal)
	}
	return int64(cd.Spec.Service.Port)
}

// appMeshTimeout is spec.service.timeout in milliseconds, or nil.
func appMeshTimeout(cd *flaggerv1beta1.Canary) (*appmeshv1beta2.HTTPTimeout, error) {
	if cd.Spec.Service.Timeout == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(cd.Spec.Service.Timeout)
	if err != nil {
		return nil, fmt.Errorf("spec.service.timeout: %w", err)
	}
	return &appmeshv1beta2.HTTPTimeout{PerRequest: &appmeshv1beta2.Duration{Unit: "ms", Value: d.Milliseconds()}}, nil
}

// renderAppMeshV1beta2VirtualNode returns the spec of the virtual node of
// the primary or canary Service: it selects the pods, is found at the
// Service's cluster host name, listens on appMeshPort with the timeout of
// spec.service, and calls spec.service.backends (names of VirtualServices,
// or ARNs).
func renderAppMeshV1beta2VirtualNode(cd *flaggerv1beta1.Canary, service string, selector map[string]string) (*appmeshv1beta2.VirtualNodeSpec, error) {
	timeout, err := appMeshTimeout(cd)
	if err != nil {
		return nil, err
	}
	listener := appmeshv1beta2.Listener{PortMapping: appmeshv1beta2.PortMapping{Port: appMeshPort(cd), Protocol: appMeshProtocol(cd)}}
	if timeout != nil {
		listener.Timeout = &appmeshv1beta2.ListenerTimeout{HTTP: timeout}
	}
	spec := &appmeshv1beta2.VirtualNodeSpec{
		PodSelector:      &metav1.LabelSelector{MatchLabels: selector},
		Listeners:        []appmeshv1beta2.Listener{listener},
		ServiceDiscovery: &appmeshv1beta2.ServiceDiscovery{DNS: &appmeshv1beta2.DNSServiceDiscovery{Hostname: fmt.Sprintf("%s.%s.svc.cluster.local.", service, cd.Namespace)}},
	}
	for _, b := range cd.Spec.Service.Backends {
		backend := appmeshv1beta2.VirtualServiceBackend{VirtualServiceRef: &appmeshv1beta2.Reference{Name: b}}
		if strings.HasPrefix(b, "arn:aws") {
			backend = appmeshv1beta2.VirtualServiceBackend{VirtualServiceARN: ptr.To(b)}
		}
		spec.Backends = append(spec.Backends, appmeshv1beta2.Backend{VirtualService: backend})
	}
	if cd.Annotations[AppMeshAccessLogAnnotation] == "enabled" {
		spec.Logging = &appmeshv1beta2.Logging{AccessLog: &appmeshv1beta2.AccessLog{File: &appmeshv1beta2.FileAccessLog{Path: "/dev/stdout"}}}
	}
	return spec, nil
}

// renderAppMeshVirtualRouter returns the spec of the router of the apex
// or canary Service for a split, with the routes of appMeshRoutes.
func renderAppMeshVirtualRouter(cd *flaggerv1beta1.Canary, service string, routes Routes) (*appmeshv1beta2.VirtualRouterSpec, error) {
	timeout, err := appMeshTimeout(cd)
	if err != nil {
		return nil, err
	}
	retries, err := appMeshRetries(cd)
	if err != nil {
		return nil, err
	}
	plan, err := appMeshRoutes(cd, service, routes)
	if err != nil {
		return nil, err
	}
	_, primary, canary := ServiceNames(cd)
	spec := &appmeshv1beta2.VirtualRouterSpec{Listeners: []appmeshv1beta2.VirtualRouterListener{{
		PortMapping: appmeshv1beta2.PortMapping{Port: appMeshPort(cd), Protocol: appMeshProtocol(cd)},
	}}}
	for _, p := range plan {
		route := appmeshv1beta2.Route{Name: p.name, Priority: p.priority, HTTPRoute: &appmeshv1beta2.HTTPRoute{
			Match: appmeshv1beta2.HTTPRouteMatch{Prefix: appMeshPrefix(cd)},
			Action: appmeshv1beta2.HTTPRouteAction{WeightedTargets: []appmeshv1beta2.WeightedTarget{
				{VirtualNodeRef: &appmeshv1beta2.Reference{Name: canary}, Weight: int64(p.routes.Canary)},
				{VirtualNodeRef: &appmeshv1beta2.Reference{Name: primary}, Weight: int64(p.routes.Primary)},
			}},
			Timeout: timeout,
		}}
		if retries != nil {
			route.HTTPRoute.RetryPolicy = &appmeshv1beta2.HTTPRetryPolicy{
				HTTPRetryEvents: retries.events, MaxRetries: retries.attempts,
				PerRetryTimeout: appmeshv1beta2.Duration{Unit: "ms", Value: retries.perTry.Milliseconds()},
			}
		}
		for _, h := range p.headers {
			m := appmeshv1beta2.HeaderMatchMethod(h.match)
			route.HTTPRoute.Match.Headers = append(route.HTTPRoute.Match.Headers, appmeshv1beta2.HTTPRouteHeader{Name: h.name, Match: &m})
		}
		spec.Routes = append(spec.Routes, route)
	}
	return spec, nil
}

// appMeshV1beta2Routes reads the split of the router <apex> from its
// first route.
func appMeshV1beta2Routes(spec *appmeshv1beta2.VirtualRouterSpec, cd *flaggerv1beta1.Canary) (Routes, error) {
	_, primary, canary := ServiceNames(cd)
	if len(spec.Routes) == 0 || spec.Routes[0].HTTPRoute == nil {
		return Routes{}, errors.New("it has no HTTP route")
	}
	var backends []weightedBackend
	for _, t := range spec.Routes[0].HTTPRoute.Action.WeightedTargets {
		if t.VirtualNodeRef != nil {
			backends = append(backends, weightedBackend{name: t.VirtualNodeRef.Name, weight: int(t.Weight)})
		}
	}
	return splitOf(backends, primary, canary, false), nil
}
