package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	smiv1alpha1 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha1"
	smiv1alpha2 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha2"
	smiv1alpha3 "github.com/sluicedev/sluice/pkg/apis/smi/v1alpha3"
)

// trafficSplit is the part of a TrafficSplit the SMI router writes and
// reads, whatever its API version: the root Service and weighted backends.
type trafficSplit struct {
	service  string
	backends []weightedBackend
}

// smiVersion is what differs between the SMI providers: the API version
// of the TrafficSplit they write.
type smiVersion struct {
	// name is the API version, for messages.
	name string
	// newObject returns an empty TrafficSplit of the version.
	newObject func() client.Object
	// spec returns a pointer to the spec of a TrafficSplit of the version.
	spec func(client.Object) any
	// quantityWeights is true when the weights are resource quantities
	// (v1alpha1, written as "90") rather than integers.
	quantityWeights bool
}

// The SMI versions. Their specs have the same JSON shape, apart from the
// type of the weights, so one conversion through JSON serves them all.
var (
	smiV1alpha1 = smiVersion{
		name:            smiv1alpha1.GroupVersion.Version,
		newObject:       func() client.Object { return &smiv1alpha1.TrafficSplit{} },
		spec:            func(obj client.Object) any { return &obj.(*smiv1alpha1.TrafficSplit).Spec },
		quantityWeights: true,
	}
	smiV1alpha2 = smiVersion{
		name:      smiv1alpha2.GroupVersion.Version,
		newObject: func() client.Object { return &smiv1alpha2.TrafficSplit{} },
		spec:      func(obj client.Object) any { return &obj.(*smiv1alpha2.TrafficSplit).Spec },
	}
	smiV1alpha3 = smiVersion{
		name:      smiv1alpha3.GroupVersion.Version,
		newObject: func() client.Object { return &smiv1alpha3.TrafficSplit{} },
		spec:      func(obj client.Object) any { return &obj.(*smiv1alpha3.TrafficSplit).Spec },
	}
)

// smiSpec is the JSON shape of a TrafficSplit's spec in every version.
type smiSpec struct {
	Service  string       `json:"service"`
	Backends []smiBackend `json:"backends"`
}

// smiBackend is a backend of smiSpec; its weight is a number or, in
// v1alpha1, a quantity string.
type smiBackend struct {
	Service string             `json:"service"`
	Weight  intstr.IntOrString `json:"weight"`
}

// read returns the split a TrafficSplit of the version holds.
func (v smiVersion) read(obj client.Object) (trafficSplit, error) {
	data, err := json.Marshal(v.spec(obj))
	if err != nil {
		return trafficSplit{}, fmt.Errorf("encoding the %s spec: %w", v.name, err)
	}
	var spec smiSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return trafficSplit{}, fmt.Errorf("decoding the %s spec: %w", v.name, err)
	}
	s := trafficSplit{service: spec.Service}
	for _, b := range spec.Backends {
		w := b.Weight.IntValue()
		if b.Weight.Type == intstr.String {
			q, err := resource.ParseQuantity(b.Weight.StrVal)
			if err != nil {
				return trafficSplit{}, fmt.Errorf("the weight of backend %s: %w", b.Service, err)
			}
			w = int(q.Value())
		}
		s.backends = append(s.backends, weightedBackend{name: b.Service, weight: w})
	}
	return s, nil
}

// write sets the spec of a TrafficSplit of the version to the split.
func (v smiVersion) write(obj client.Object, s trafficSplit) error {
	spec := smiSpec{Service: s.service, Backends: make([]smiBackend, 0, len(s.backends))}
	for _, b := range s.backends {
		w := intstr.FromInt(b.weight)
		if v.quantityWeights {
			w = intstr.FromString(strconv.Itoa(b.weight))
		}
		spec.Backends = append(spec.Backends, smiBackend{Service: b.name, Weight: w})
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return fmt.Errorf("encoding the %s spec: %w", v.name, err)
	}
	target := v.spec(obj)
	reflect.ValueOf(target).Elem().SetZero()
	if err := json.Unmarshal(data, target); err != nil {
		return fmt.Errorf("decoding the %s spec: %w", v.name, err)
	}
	return nil
}

// smiRouter is the router of providers "smi:v1alpha1", "smi:v1alpha2",
// "smi:v1alpha3", "linkerd" (v1alpha1, the version Flagger writes for
// Linkerd and that Linkerd's SMI extension serves) and "osm" (v1alpha2,
// the version Open Service Mesh serves). It owns the TrafficSplit <apex>,
// which splits the traffic sent to the apex Service between the primary
// and canary Services by weight.
//
// SMI splits by weight only: a mirrored split and an A/B test (whose
// request matches would need HTTPRouteGroups) are refused. Rendering is
// pure (renderTrafficSplit); the object is written with Ensure, so an edit
// of someone else to the spec is reverted on the next Reconcile or
// SetRoutes.
type smiRouter struct {
	client  client.Client
	version smiVersion
}

// OwnedObjects implements ObjectOwner.
func (r *smiRouter) OwnedObjects() []client.Object { return []client.Object{r.version.newObject()} }

// newSMIRouter returns a constructor of the SMI router for a version.
func newSMIRouter(v smiVersion) func(Deps) Interface {
	return func(d Deps) Interface { return &smiRouter{client: meshClientOf(d), version: v} }
}

// Reconcile creates or updates the TrafficSplit. It keeps the split the
// TrafficSplit holds, or routes all traffic to the primary when it is new
// or its split cannot be read.
func (r *smiRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.ensureTrafficSplit(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the TrafficSplit of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the TrafficSplit's backend weights.
func (r *smiRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureTrafficSplit(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the TrafficSplit's backend weights, as
// written; Sluice writes percentages.
func (r *smiRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	apex, primary, canary := ServiceNames(cd)
	obj := r.version.newObject()
	if err := r.client.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: apex}, obj); err != nil {
		return Routes{}, fmt.Errorf("reading the TrafficSplit %s/%s (%s) of Canary %s: %w", cd.Namespace, apex, r.version.name, cd.Name, err)
	}
	split, err := r.version.read(obj)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the TrafficSplit %s/%s of Canary %s: %w", cd.Namespace, apex, cd.Name, err)
	}
	return splitOf(split.backends, primary, canary, false), nil
}

// Finalize does nothing: the TrafficSplit is Sluice's own and is deleted
// with the Canary, and without it the mesh sends the apex Service's
// traffic to the apex Service's own pods.
func (r *smiRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureTrafficSplit creates or updates the TrafficSplit with routes, or
// with the split it holds when routes is nil.
func (r *smiRouter) ensureTrafficSplit(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	apex, primary, canary := ServiceNames(cd)
	obj := r.version.newObject()
	obj.SetName(apex)
	obj.SetNamespace(cd.Namespace)
	return ensureSplit(ctx, r.client, cd, obj, routes,
		func() (Routes, error) {
			live, err := r.version.read(obj)
			if err != nil {
				return Routes{}, err
			}
			return splitOf(live.backends, primary, canary, false), nil
		},
		func(want Routes) error {
			split, err := renderTrafficSplit(cd, want)
			if err != nil {
				return configError(err)
			}
			if err := r.version.write(obj, split); err != nil {
				return err
			}
			setApexMetadata(obj, cd)
			return nil
		})
}

// renderTrafficSplit returns the split of the TrafficSplit <apex>: the
// apex Service split between the primary and canary Services. A mirrored
// split and a split for an A/B test are refused, as SMI can express
// neither; an A/B Canary may still be routed all to the primary.
func renderTrafficSplit(cd *flaggerv1beta1.Canary, routes Routes) (trafficSplit, error) {
	switch {
	case routes.Mirrored:
		return trafficSplit{}, errors.New("SMI TrafficSplits cannot mirror traffic; remove analysis.mirror")
	case abTesting(cd) && routes.Canary > 0:
		return trafficSplit{}, errors.New("SMI TrafficSplits cannot route A/B tests by request match; remove analysis.match or use another provider")
	}
	apex, primary, canary := ServiceNames(cd)
	return trafficSplit{service: apex, backends: []weightedBackend{
		{name: primary, weight: routes.Primary},
		{name: canary, weight: routes.Canary},
	}}, nil
}
