package router

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	appmeshv1beta1 "github.com/sluicedev/sluice/pkg/apis/appmesh/v1beta1"
)

const (
	// AppMeshAccessLogAnnotation set to "enabled" on a Canary turns on the
	// access log of its virtual nodes (Flagger's annotation).
	AppMeshAccessLogAnnotation = "appmesh.flagger.app/accesslog"
	// appMeshGatewayPrefix is the prefix of the App Mesh gateway's
	// annotations on the apex virtual service.
	appMeshGatewayPrefix = "gateway.appmesh.k8s.aws/"
	// appMeshABPriority and appMeshDefaultPriority order the A/B routes
	// before the default route.
	appMeshABPriority      = 10
	appMeshDefaultPriority = 20
)

// appMeshRouter is the router of provider "appmesh", for App Mesh's first
// Kubernetes controller (appmesh.k8s.aws/v1beta1). It owns, for a Canary
// with apex Service <apex> in namespace <ns>:
//
//   - the VirtualNodes <apex>, <apex>-primary and <apex>-canary in mesh
//     spec.service.meshName; the first two are found at the primary
//     Service's host name, the last at the canary's;
//   - the VirtualService <apex>.<ns>, whose virtual router <apex> splits
//     the requests between the primary and canary nodes, and carries the
//     App Mesh gateway's annotations when spec.service.hosts are set;
//   - the VirtualService <apex>-canary.<ns>, whose router sends every
//     request to the canary node, for tests that call the canary directly.
//
// During an A/B test the first routes take the requests whose headers
// match an analysis.match entry and carry the split; the last route sends
// the rest to the primary. Mirroring is refused. Rendering is pure; the
// objects are written with Ensure, so an edit of someone else to their
// spec is reverted on the next Reconcile or SetRoutes.
type appMeshRouter struct {
	client client.Client
}

// OwnedObjects implements ObjectOwner.
func (r *appMeshRouter) OwnedObjects() []client.Object {
	return []client.Object{&appmeshv1beta1.VirtualNode{}, &appmeshv1beta1.VirtualService{}}
}

func newAppMeshRouter(d Deps) Interface {
	return &appMeshRouter{client: meshClientOf(d)}
}

// appMeshVirtualServiceName is the name of the apex or canary virtual
// service: <service>.<namespace>.
func appMeshVirtualServiceName(cd *flaggerv1beta1.Canary, service string) string {
	return service + "." + cd.Namespace
}

// Reconcile creates or updates the virtual nodes and services. The apex
// virtual service keeps the split it holds, or routes all traffic to the
// primary when it is new or its split cannot be read.
func (r *appMeshRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if cd.Spec.Service.MeshName == "" {
		return configError(errors.New("appmesh needs spec.service.meshName: the App Mesh mesh of the virtual nodes and services"))
	}
	apex, primary, canary := ServiceNames(cd)
	for _, node := range [][2]string{{apex, primary}, {primary, primary}, {canary, canary}} {
		vn := &appmeshv1beta1.VirtualNode{ObjectMeta: metav1.ObjectMeta{Name: node[0], Namespace: cd.Namespace}}
		if _, err := Ensure(ctx, r.client, cd, vn, func() error {
			vn.Spec = renderAppMeshVirtualNode(cd, appMeshVirtualServiceName(cd, node[1]))
			setApexMetadata(vn, cd)
			return nil
		}); err != nil {
			return fmt.Errorf("reconciling the App Mesh routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
		}
	}
	vs := &appmeshv1beta1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: appMeshVirtualServiceName(cd, canary), Namespace: cd.Namespace}}
	if _, err := Ensure(ctx, r.client, cd, vs, func() error {
		spec, err := renderAppMeshVirtualService(cd, canary, Routes{Canary: 100})
		if err != nil {
			return configError(err)
		}
		vs.Spec = *spec
		return nil
	}); err != nil {
		return fmt.Errorf("reconciling the App Mesh routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	if err := r.ensureApexVirtualService(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the App Mesh routing of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the apex virtual service's routes.
func (r *appMeshRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureApexVirtualService(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the first route of the apex virtual
// service, which carries it with or without an A/B test.
func (r *appMeshRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, _, _ := ServiceNames(cd)
	vs := &appmeshv1beta1.VirtualService{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: appMeshVirtualServiceName(cd, apex)}
	if err := r.client.Get(ctx, key, vs); err != nil {
		return Routes{}, fmt.Errorf("reading the VirtualService %s of Canary %s: %w", key, cd.Name, err)
	}
	routes, err := appMeshV1beta1Routes(&vs.Spec, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the VirtualService %s of Canary %s: %w", key, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the virtual nodes and services are Sluice's own
// and are deleted with the Canary.
func (r *appMeshRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureApexVirtualService creates or updates the virtual service
// <apex>.<ns> with routes, or with the split it holds when routes is nil.
func (r *appMeshRouter) ensureApexVirtualService(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	if cd.Spec.Service.MeshName == "" {
		return configError(errors.New("appmesh needs spec.service.meshName: the App Mesh mesh of the virtual nodes and services"))
	}
	apex, _, _ := ServiceNames(cd)
	vs := &appmeshv1beta1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: appMeshVirtualServiceName(cd, apex), Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, vs, routes,
		func() (Routes, error) { return appMeshV1beta1Routes(&vs.Spec, cd) },
		func(want Routes) error {
			spec, err := renderAppMeshVirtualService(cd, apex, want)
			if err != nil {
				return configError(err)
			}
			vs.Spec = *spec
			SetMetadata(vs, nil, appMeshGatewayAnnotations(cd), nil)
			return nil
		})
}

// renderAppMeshVirtualNode returns the spec of a virtual node found at a
// host name.
func renderAppMeshVirtualNode(cd *flaggerv1beta1.Canary, host string) appmeshv1beta1.VirtualNodeSpec {
	svc := cd.Spec.Service
	spec := appmeshv1beta1.VirtualNodeSpec{
		MeshName:         svc.MeshName,
		Listeners:        []appmeshv1beta1.Listener{{PortMapping: appmeshv1beta1.PortMapping{Port: int64(svc.Port), Protocol: appMeshProtocol(cd)}}},
		ServiceDiscovery: &appmeshv1beta1.ServiceDiscovery{DNS: &appmeshv1beta1.DNSServiceDiscovery{HostName: host}},
	}
	for _, b := range svc.Backends {
		spec.Backends = append(spec.Backends, appmeshv1beta1.Backend{VirtualService: appmeshv1beta1.VirtualServiceBackend{VirtualServiceName: b}})
	}
	if cd.Annotations[AppMeshAccessLogAnnotation] == "enabled" {
		spec.Logging = &appmeshv1beta1.Logging{AccessLog: &appmeshv1beta1.AccessLog{File: &appmeshv1beta1.FileAccessLog{Path: "/dev/stdout"}}}
	}
	return spec
}

// renderAppMeshVirtualService returns the spec of the virtual service of
// the apex or canary Service, whose router is named after the Service,
// for a split. Its routes are those of appMeshRoutes.
func renderAppMeshVirtualService(cd *flaggerv1beta1.Canary, service string, routes Routes) (*appmeshv1beta1.VirtualServiceSpec, error) {
	retries, err := appMeshRetries(cd)
	if err != nil {
		return nil, err
	}
	_, primary, canary := ServiceNames(cd)
	plan, err := appMeshRoutes(cd, service, routes)
	if err != nil {
		return nil, err
	}
	spec := &appmeshv1beta1.VirtualServiceSpec{
		MeshName: cd.Spec.Service.MeshName,
		VirtualRouter: &appmeshv1beta1.VirtualRouter{Name: service, Listeners: []appmeshv1beta1.VirtualRouterListener{{
			PortMapping: appmeshv1beta1.PortMapping{Port: int64(cd.Spec.Service.Port), Protocol: appMeshProtocol(cd)},
		}}},
	}
	for _, p := range plan {
		route := appmeshv1beta1.Route{Name: p.name, Priority: p.priority, HTTP: &appmeshv1beta1.HTTPRoute{
			Match: appmeshv1beta1.HTTPRouteMatch{Prefix: appMeshPrefix(cd)},
			Action: appmeshv1beta1.HTTPRouteAction{WeightedTargets: []appmeshv1beta1.WeightedTarget{
				{VirtualNodeName: canary, Weight: int64(p.routes.Canary)},
				{VirtualNodeName: primary, Weight: int64(p.routes.Primary)},
			}},
		}}
		if retries != nil {
			route.HTTP.RetryPolicy = &appmeshv1beta1.HTTPRetryPolicy{
				PerRetryTimeoutMillis: ptr.To(retries.perTry.Milliseconds()), MaxRetries: ptr.To(retries.attempts), HTTPRetryEvents: retries.events,
			}
		}
		for _, h := range p.headers {
			m := appmeshv1beta1.HeaderMatchMethod(h.match)
			route.HTTP.Match.Headers = append(route.HTTP.Match.Headers, appmeshv1beta1.HTTPRouteHeader{Name: h.name, Match: &m})
		}
		spec.Routes = append(spec.Routes, route)
	}
	return spec, nil
}

// appMeshRoutePlan is one route of a virtual router, whatever the API
// version.
type appMeshRoutePlan struct {
	name     string
	priority *int64
	headers  []appMeshHeader
	routes   Routes
}

// appMeshHeader is a header condition of a route.
type appMeshHeader struct {
	name  string
	match struct{ Exact, Prefix, Regex, Suffix *string }
}

// appMeshRoutes returns the routes of the router of a Service for a
// split: one route named after the Service that carries the split or,
// for the apex during an A/B test, one route per analysis.match entry
// (<apex>-a, then <apex>-a-<i>) that matches its headers and carries the
// split, then the route <apex>-b to the primary.
func appMeshRoutes(cd *flaggerv1beta1.Canary, service string, routes Routes) ([]appMeshRoutePlan, error) {
	apex, _, _ := ServiceNames(cd)
	if routes.Mirrored {
		return nil, errors.New("app mesh cannot mirror traffic; remove analysis.mirror")
	}
	if service != apex || !abTesting(cd) {
		return []appMeshRoutePlan{{name: service, routes: routes}}, nil
	}
	f := &fieldErrors{}
	var out []appMeshRoutePlan
	for i, m := range cd.Spec.Analysis.Match {
		field := fmt.Sprintf("spec.analysis.match[%d]", i)
		if len(m.QueryParams) > 0 || len(m.SourceLabels) > 0 {
			f.fail(field, errors.New("app mesh routes A/B tests by header only"))
		}
		name := apex + "-a"
		if i > 0 {
			name = fmt.Sprintf("%s-a-%d", apex, i)
		}
		p := appMeshRoutePlan{name: name, priority: ptr.To(int64(appMeshABPriority + i)), routes: routes}
		for _, h := range sortedKeys(m.Headers) {
			v := m.Headers[h]
			if v.Exact == nil && v.Prefix == nil && v.Regex == nil && v.Suffix == nil {
				f.fail(field+".headers."+h, errors.New("give exact, prefix, suffix or regex"))
				continue
			}
			header := appMeshHeader{name: h}
			header.match.Exact, header.match.Prefix, header.match.Regex, header.match.Suffix = v.Exact, v.Prefix, v.Regex, v.Suffix
			p.headers = append(p.headers, header)
		}
		out = append(out, p)
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	last := int64(max(appMeshDefaultPriority, appMeshABPriority+len(out)))
	return append(out, appMeshRoutePlan{name: apex + "-b", priority: &last, routes: Routes{Primary: 100}}), nil
}

// appMeshProtocol is grpc when spec.service.portName says so, else http.
func appMeshProtocol(cd *flaggerv1beta1.Canary) string {
	if strings.Contains(cd.Spec.Service.PortName, "grpc") {
		return "grpc"
	}
	return "http"
}

// appMeshPrefix is the path prefix of the routes: the uri prefix of the
// first spec.service.match entry, or "/". App Mesh matches paths by
// prefix only.
func appMeshPrefix(cd *flaggerv1beta1.Canary) string {
	if m := cd.Spec.Service.Match; len(m) > 0 && m[0].URI != nil && ptr.Deref(m[0].URI.Prefix, "") != "" {
		return *m[0].URI.Prefix
	}
	return "/"
}

// appMeshRetry is the retry policy of spec.service.retries.
type appMeshRetry struct {
	perTry   time.Duration
	attempts int64
	events   []string
}

// appMeshRetries returns the retry policy of spec.service.retries, or nil
// without it: each try times out after perTryTimeout (250ms when unset),
// attempts (1 when unset) retries happen on the retryOn events
// (gateway-error when unset).
func appMeshRetries(cd *flaggerv1beta1.Canary) (*appMeshRetry, error) {
	r := cd.Spec.Service.Retries
	if r == nil {
		return nil, nil
	}
	out := &appMeshRetry{perTry: 250 * time.Millisecond, attempts: 1, events: []string{"gateway-error"}}
	if r.PerTryTimeout != "" {
		d, err := time.ParseDuration(r.PerTryTimeout)
		if err != nil {
			return nil, fmt.Errorf("spec.service.retries.perTryTimeout: %w", err)
		}
		out.perTry = d
	}
	if r.Attempts > 0 {
		out.attempts = int64(r.Attempts)
	}
	if r.RetryOn != "" {
		out.events = nil
		for e := range strings.SplitSeq(r.RetryOn, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out.events = append(out.events, e)
			}
		}
	}
	return out, nil
}

// appMeshGatewayAnnotations returns the App Mesh gateway's annotations of
// the apex virtual service: with spec.service.hosts, it is exposed on the
// gateway for those domains, with spec.service's timeout and retries.
func appMeshGatewayAnnotations(cd *flaggerv1beta1.Canary) map[string]string {
	svc := cd.Spec.Service
	if len(svc.Hosts) == 0 {
		return nil
	}
	out := map[string]string{
		appMeshGatewayPrefix + "expose": "true",
		appMeshGatewayPrefix + "domain": strings.Join(svc.Hosts, ",") + ",",
	}
	if svc.Timeout != "" {
		out[appMeshGatewayPrefix+"timeout"] = svc.Timeout
	}
	if svc.Retries != nil && svc.Retries.Attempts > 0 {
		out[appMeshGatewayPrefix+"retries"] = strconv.Itoa(int(svc.Retries.Attempts))
	}
	return out
}

// appMeshV1beta1Routes reads the split of the apex virtual service from
// its first route.
func appMeshV1beta1Routes(spec *appmeshv1beta1.VirtualServiceSpec, cd *flaggerv1beta1.Canary) (Routes, error) {
	_, primary, canary := ServiceNames(cd)
	if len(spec.Routes) == 0 || spec.Routes[0].HTTP == nil {
		return Routes{}, errors.New("it has no HTTP route")
	}
	var backends []weightedBackend
	for _, t := range spec.Routes[0].HTTP.Action.WeightedTargets {
		backends = append(backends, weightedBackend{name: t.VirtualNodeName, weight: int(t.Weight)})
	}
	return splitOf(backends, primary, canary, false), nil
}
