package router

import (
	"fmt"
	"slices"
	"sync"
	"time"

	istionetworking "istio.io/api/networking/v1"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// istioAPI is an API version of Istio's networking.istio.io kinds. The
// versions hold the same specs; Istio before 1.22 serves v1beta1 only.
type istioAPI struct {
	// version is the API version, such as v1.
	version string
	// virtualService returns an empty VirtualService of the version, and
	// a pointer to its spec.
	virtualService func(meta metav1.ObjectMeta) (client.Object, *istionetworking.VirtualService)
	// destinationRule returns an empty DestinationRule of the version, and
	// a pointer to its spec.
	destinationRule func(meta metav1.ObjectMeta) (client.Object, *istionetworking.DestinationRule)
}

// istioAPIs are the versions the istio router writes, newest first.
var istioAPIs = []istioAPI{
	{
		version: "v1",
		virtualService: func(meta metav1.ObjectMeta) (client.Object, *istionetworking.VirtualService) {
			vs := &networkingv1.VirtualService{ObjectMeta: meta}
			return vs, &vs.Spec
		},
		destinationRule: func(meta metav1.ObjectMeta) (client.Object, *istionetworking.DestinationRule) {
			dr := &networkingv1.DestinationRule{ObjectMeta: meta}
			return dr, &dr.Spec
		},
	},
	{
		version: "v1beta1",
		virtualService: func(meta metav1.ObjectMeta) (client.Object, *istionetworking.VirtualService) {
			vs := &networkingv1beta1.VirtualService{ObjectMeta: meta}
			return vs, &vs.Spec
		},
		destinationRule: func(meta metav1.ObjectMeta) (client.Object, *istionetworking.DestinationRule) {
			dr := &networkingv1beta1.DestinationRule{ObjectMeta: meta}
			return dr, &dr.Spec
		},
	},
}

// istioAPITTL is how long the version chosen for an API server is kept
// before istioAPIOf looks at its REST mapper again.
const istioAPITTL = time.Minute

// chosenIstioAPI is a version chosen for a REST mapper, and when.
type chosenIstioAPI struct {
	api istioAPI
	at  time.Time
}

// chosenIstioAPIs maps the REST mapper of a client (one per API server the
// process talks to) to the version chosen for it.
var chosenIstioAPIs sync.Map

// istioAPIOf returns the newest version of Istio's networking kinds that
// the API server of c serves. It asks the client's REST mapper, which
// reads the group's discovery document once and caches it, and keeps the
// answer for a minute, since going through all of the mapper's kinds is
// not free. A group the server does not serve is looked up again on the
// next call, so Istio installed later is found.
func istioAPIOf(c client.Client) (istioAPI, error) {
	mapper := c.RESTMapper()
	if v, ok := chosenIstioAPIs.Load(mapper); ok && time.Since(v.(chosenIstioAPI).at) < istioAPITTL {
		return v.(chosenIstioAPI).api, nil
	}
	api, err := servedIstioAPI(mapper)
	if err == nil {
		chosenIstioAPIs.Store(mapper, chosenIstioAPI{api: api, at: time.Now()})
	}
	return api, err
}

// servedIstioAPI returns the newest version of Istio's VirtualService and
// DestinationRule that the mapper knows the API server to serve.
func servedIstioAPI(mapper meta.RESTMapper) (istioAPI, error) {
	var served []string
	for _, kind := range []string{"VirtualService", "DestinationRule"} {
		mappings, err := mapper.RESTMappings(schema.GroupKind{Group: networkingv1.SchemeGroupVersion.Group, Kind: kind})
		if err != nil {
			return istioAPI{}, fmt.Errorf("finding the versions of Istio's %s that the API server serves (is Istio installed?): %w", kind, err)
		}
		var versions []string
		for _, m := range mappings {
			versions = append(versions, m.GroupVersionKind.Version)
		}
		if served == nil {
			served = versions
		} else {
			served = slices.DeleteFunc(served, func(v string) bool { return !slices.Contains(versions, v) })
		}
	}
	for _, api := range istioAPIs {
		if slices.Contains(served, api.version) {
			return api, nil
		}
	}
	return istioAPI{}, fmt.Errorf("the API server serves Istio's VirtualService and DestinationRule in versions %v, but Sluice writes v1 or v1beta1 (Istio 1.9 or later)", served)
}
