package router

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// Interface is a traffic router: it owns the routing objects of one
// provider for a Canary. Every method is idempotent.
type Interface interface {
	// Reconcile creates or updates the routing objects so that they exist
	// and match the spec, keeping the current weights.
	Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) error
	// SetRoutes sets the traffic split.
	SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, t Target, r Routes) error
	// GetRoutes reports the traffic split the routing objects hold now.
	GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) (Routes, error)
	// Finalize restores the routing to the target workload when the Canary
	// is deleted with revertOnDeletion.
	Finalize(ctx context.Context, cd *flaggerv1beta1.Canary, t Target) error
}

// Routes is a traffic split between the primary, the canary and, with
// analysis.baseline, the baseline.
type Routes struct {
	// Primary is the primary's share of the traffic, in percent.
	Primary int
	// Canary is the canary's share of the traffic, in percent.
	Canary int
	// Baseline is the baseline's share of the traffic, in percent. Only the
	// routers SupportsBaseline reports route to it; the others refuse a
	// split with a baseline share.
	Baseline int
	// Mirrored is true when the primary's traffic is also copied to the canary.
	Mirrored bool
}

// percent converts a share of the traffic to the integer type of a mesh's
// API, bounded to 0..100: the state machine never asks for more, and a
// share out of range must not wrap around into another split (a negative
// weight as uint32 would send nearly all the traffic to its destination).
func percent[T int32 | uint32](share int) T {
	return T(min(max(share, 0), 100))
}

// Target is what routers and Services need to know about the workload.
type Target struct {
	// SelectorLabel is the label that selects the workload's pods.
	SelectorLabel string
	// SelectorValue is its value on the canary (target) pods; primary pods
	// carry SelectorValue + "-primary".
	SelectorValue string
	// Containers are the pod template's containers with their ports, in
	// pod template order (PodContainers builds them). Port discovery skips
	// the ports of the istio-proxy and envoy sidecars and names unnamed
	// ports tcp-<container>-<index>.
	Containers []Container
}

// Container is a container of the target's pod template and its ports.
type Container struct {
	// Name is the container's name.
	Name string
	// Ports are the container's ports, in the pod template's order.
	Ports []corev1.ContainerPort
}

// PodContainers returns the containers of a pod spec with their ports, for
// Target.Containers. Init containers are left out.
func PodContainers(spec *corev1.PodSpec) []Container {
	out := make([]Container, 0, len(spec.Containers))
	for _, c := range spec.Containers {
		out = append(out, Container{Name: c.Name, Ports: c.Ports})
	}
	return out
}

// Deps are what routers need.
type Deps struct {
	// Client reads from the cache and writes, in the cluster of the
	// Canary and its workloads. The Services, the Ingresses of the nginx
	// and skipper providers and the Knative Services are always written
	// with it.
	Client client.Client
	// APIReader reads, uncached, the user's objects that routers only
	// check, such as the Gateways of spec.service.gatewayRefs, which may
	// live in namespaces the cache does not cover. Nil means Client.
	APIReader client.Reader
	// IngressAnnotationsPrefix is the prefix of the NGINX Ingress
	// controller's annotations that the nginx router writes, such as
	// nginx.ingress.kubernetes.io in nginx.ingress.kubernetes.io/canary.
	// It is set from the -ingress-annotations-prefix flag; empty means
	// DefaultIngressAnnotationsPrefix.
	IngressAnnotationsPrefix string
	// IngressClass is the ingress class of the routing objects that
	// ingress controllers serve, such as the ingressClassName of the
	// contour router's HTTPProxy, so that only the controller of that
	// class serves them. It is set from the -ingress-class flag; empty
	// means no class, which the controllers that serve objects without a
	// class pick up.
	IngressClass string
	// MeshClient, when set, is the client of another cluster, the one
	// whose mesh or ingress controller serves the routing objects
	// (-kubeconfig-service-mesh). The mesh and ingress providers whose
	// objects Flagger writes with its mesh client (istio, gatewayapi, smi,
	// linkerd, osm, contour, traefik, gloo, kuma, apisix, appmesh) write
	// and read them there, in the namespace of the Canary's name; see
	// meshClientOf for how their ownership is kept. Nil means Client.
	MeshClient client.Client
	// MeshAPIReader reads, uncached, from the cluster of MeshClient. Nil
	// means MeshClient.
	MeshAPIReader client.Reader
}

// readerOf returns the uncached reader of d, or its client.
func readerOf(d Deps) client.Reader {
	if d.APIReader != nil {
		return d.APIReader
	}
	return d.Client
}

// meshClientOf returns the client of the cluster that holds the routing
// objects: Client, or, with a MeshClient, that client wrapped so that
// ownership by the Canary, which lives in the other cluster, is recorded
// in an annotation instead of an owner reference (see newRemoteClient).
func meshClientOf(d Deps) client.Client {
	if d.MeshClient == nil {
		return d.Client
	}
	return newRemoteClient(d.MeshClient, d.Client)
}

// meshReaderOf returns the uncached reader of the cluster that holds the
// routing objects.
func meshReaderOf(d Deps) client.Reader {
	switch {
	case d.MeshClient == nil:
		return readerOf(d)
	case d.MeshAPIReader != nil:
		return d.MeshAPIReader
	}
	return d.MeshClient
}

// providers maps a provider name to its router. Adding a provider is one
// file and one line here.
var providers = map[string]func(Deps) Interface{
	flaggerv1beta1.ProviderKubernetes:        newKubernetesRouter,
	flaggerv1beta1.ProviderIstio:             newIstioRouter,
	flaggerv1beta1.ProviderGatewayAPIV1:      newGatewayAPIV1Router,
	flaggerv1beta1.ProviderGatewayAPIV1beta1: newGatewayAPIV1beta1Router,
	flaggerv1beta1.ProviderNGINX:             newNGINXRouter,
	flaggerv1beta1.ProviderLinkerd:           newSMIRouter(smiV1alpha1),
	flaggerv1beta1.ProviderSMIV1alpha1:       newSMIRouter(smiV1alpha1),
	flaggerv1beta1.ProviderSMIV1alpha2:       newSMIRouter(smiV1alpha2),
	flaggerv1beta1.ProviderSMIV1alpha3:       newSMIRouter(smiV1alpha3),
	flaggerv1beta1.ProviderOSM:               newSMIRouter(smiV1alpha2),
	flaggerv1beta1.ProviderContour:           newContourRouter,
	flaggerv1beta1.ProviderTraefik:           newTraefikRouter,
	flaggerv1beta1.ProviderGloo:              newGlooRouter,
	flaggerv1beta1.ProviderKuma:              newKumaRouter,
	flaggerv1beta1.ProviderAPISIX:            newAPISIXRouter,
	flaggerv1beta1.ProviderSkipper:           newSkipperRouter,
	flaggerv1beta1.ProviderKnative:           newKnativeRouter,
	flaggerv1beta1.ProviderAppMesh:           newAppMeshRouter,
	flaggerv1beta1.ProviderAppMeshV1beta2:    newAppMeshV1beta2Router,
}

// ObjectOwner is implemented by routers that own objects besides the
// Services: it lists an empty object of each kind, so that the controller
// watches them and restores what someone else changed.
type ObjectOwner interface {
	OwnedObjects() []client.Object
}

// OwnedObjects returns an empty object of every kind that some router owns,
// one per kind, for the controller's watches.
func OwnedObjects() []client.Object {
	seen := map[string]bool{}
	var out []client.Object
	for _, name := range slices.Sorted(maps.Keys(providers)) {
		o, ok := providers[name](Deps{}).(ObjectOwner)
		if !ok {
			continue
		}
		for _, obj := range o.OwnedObjects() {
			if t := fmt.Sprintf("%T", obj); !seen[t] {
				seen[t] = true
				out = append(out, obj)
			}
		}
	}
	return out
}

// New returns the router for a provider name, or an error naming the
// providers Sluice supports. There is no fallback to another provider.
//
// An SMI provider may name the mesh that implements the API after its
// version, as in smi:v1alpha3:linkerd; the router is the one of the version.
func New(provider string, deps Deps) (Interface, error) {
	newRouter, ok := providers[smiVersionOf(provider)]
	if !ok {
		known := make([]string, 0, len(providers))
		for name := range providers {
			known = append(known, name)
		}
		slices.Sort(known)
		return nil, fmt.Errorf("traffic provider %q is not supported; supported: %s", provider, strings.Join(known, ", "))
	}
	return newRouter(deps), nil
}

// smiVersionOf returns smi:<version> for smi:<version>:<mesh>, and any
// other provider name as it is.
func smiVersionOf(provider string) string {
	if rest, ok := strings.CutPrefix(provider, "smi:"); ok {
		if version, mesh, ok := strings.Cut(rest, ":"); ok && mesh != "" && !strings.Contains(mesh, ":") {
			return "smi:" + version
		}
	}
	return provider
}

// ServiceNames returns the apex, primary and canary Service names of a Canary.
func ServiceNames(cd *flaggerv1beta1.Canary) (apex, primary, canary string) {
	apex = cd.Spec.Service.Name
	if apex == "" {
		apex = cd.Spec.TargetRef.Name
	}
	return apex, apex + "-primary", apex + "-canary"
}

// configRetry is how often a Canary whose routing the provider cannot
// build is looked at again: the objects it refers to (a Gateway, an
// Ingress) may appear later and are not all watched.
const configRetry = time.Minute

// configError marks err, when not nil, as a problem with the Canary's spec
// that the provider cannot route: a missing reference, a match the provider
// cannot express. The engine reports it on the Canary instead of retrying
// with backoff.
func configError(err error) error {
	if err == nil {
		return nil
	}
	return &problem.Problem{Reason: problem.UnsupportedRouting, Message: err.Error(), RetryAfter: configRetry}
}
