package router

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Skipper's annotations and the predicates Sluice puts first in the canary
// Ingress's predicate annotation.
const (
	skipperPredicate      = "zalando.org/skipper-predicate"
	skipperBackendWeights = "zalando.org/backend-weights"
	// skipperPreferred makes Skipper prefer the canary Ingress's routes to
	// the user's Ingress's routes for the same requests.
	skipperPreferred = "Weight(100)"
	// skipperDisabled turns the canary Ingress's routes off, so that the
	// user's Ingress serves the requests.
	skipperDisabled = "False()"
)

// errNoSkipperIngressRef is returned for a Canary without spec.ingressRef.
var errNoSkipperIngressRef = errors.New("skipper needs spec.ingressRef: it names the Ingress to copy for the canary")

// skipperRouter is the router of provider "skipper". It reads the user's
// Ingress named by spec.ingressRef, which it never edits, and owns the
// canary Ingress <ingress>-canary: a copy of the user's Ingress in which
// each path on the apex Service goes to the primary Service and has a twin
// on the canary Service, with Skipper's backend-weights annotation
// splitting the requests between the two. While the canary takes no
// traffic the copy's routes are turned off (False()), so that Skipper
// serves the user's Ingress; otherwise they are preferred (Weight(100)).
// The user's own predicates follow Sluice's.
//
// Skipper splits by weight only here: a mirrored split and an A/B test are
// refused. Rendering is pure (renderSkipperIngress); the object is written
// with Ensure, so an edit of someone else to its spec or to Skipper's
// annotations is reverted on the next Reconcile or SetRoutes.
type skipperRouter struct {
	client client.Client
}

// OwnedObjects implements ObjectOwner.
func (r *skipperRouter) OwnedObjects() []client.Object {
	return []client.Object{&networkingv1.Ingress{}}
}

func newSkipperRouter(d Deps) Interface {
	return &skipperRouter{client: d.Client}
}

// Reconcile creates or updates the canary Ingress from the user's Ingress.
// It keeps the split the canary Ingress holds, or routes all traffic to
// the primary when it is new or its split cannot be read.
func (r *skipperRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.ensureCanaryIngress(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the canary Ingress of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the canary Ingress's annotations.
func (r *skipperRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if err := r.ensureCanaryIngress(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%% (mirrored: %t): %w",
			cd.Namespace, cd.Name, routes.Primary, routes.Canary, routes.Mirrored, err)
	}
	return nil
}

// GetRoutes reads the split from the canary Ingress's backend-weights
// annotation.
func (r *skipperRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	if cd.Spec.IngressRef == nil {
		return Routes{}, fmt.Errorf("canary %s/%s: %w", cd.Namespace, cd.Name, errNoSkipperIngressRef)
	}
	ing := &networkingv1.Ingress{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: canaryIngressName(cd)}
	if err := r.client.Get(ctx, key, ing); err != nil {
		return Routes{}, fmt.Errorf("reading the canary Ingress %s of Canary %s: %w", key, cd.Name, err)
	}
	routes, err := skipperRoutes(ing.Annotations, cd)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the canary Ingress %s of Canary %s: %w", key, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the canary Ingress is Sluice's own and is deleted
// with the Canary, and the user's Ingress was never edited.
func (r *skipperRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// ensureCanaryIngress reads the user's Ingress and creates or updates the
// canary Ingress with routes, or with the split it holds when routes is nil.
func (r *skipperRouter) ensureCanaryIngress(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	source, err := readIngressRef(ctx, r.client, cd, "skipper", errNoSkipperIngressRef)
	if err != nil {
		return err
	}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: canaryIngressName(cd), Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, ing, routes,
		func() (Routes, error) { return skipperRoutes(ing.Annotations, cd) },
		func(want Routes) error {
			desired, err := renderSkipperIngress(cd, source, want)
			if err != nil {
				return configError(err)
			}
			ing.Spec = desired.Spec
			SetMetadata(ing, desired.Labels, desired.Annotations, nil)
			return nil
		})
}

// renderSkipperIngress returns the canary Ingress for a split: the name
// <ingress>-canary, the labels, annotations and spec of the user's Ingress
// source, with
//
//   - each rule path on the apex Service sent to the primary Service, and
//     a copy of it sent to the canary Service; it is an error when there
//     are none;
//   - zalando.org/backend-weights holding the split, as JSON;
//   - zalando.org/skipper-predicate holding False() while the canary takes
//     no traffic, else Weight(100), followed by the user's predicates;
//   - kubectl's and Flux's annotations left out.
func renderSkipperIngress(cd *flaggerv1beta1.Canary, source *networkingv1.Ingress, routes Routes) (*networkingv1.Ingress, error) {
	switch {
	case routes.Mirrored:
		return nil, errors.New("the skipper provider cannot mirror traffic; remove analysis.mirror")
	case abTesting(cd) && routes.Canary > 0:
		return nil, errors.New("the skipper provider cannot route A/B tests by request match; remove analysis.match or use another provider")
	}
	apex, primary, canary := ServiceNames(cd)
	out := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: source.Name + "-canary", Namespace: source.Namespace}}
	source.Spec.DeepCopyInto(&out.Spec)
	found := false
	for _, rule := range out.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		var paths []networkingv1.HTTPIngressPath
		for _, p := range rule.HTTP.Paths {
			if p.Backend.Service == nil || p.Backend.Service.Name != apex {
				paths = append(paths, p)
				continue
			}
			found = true
			toCanary := *p.DeepCopy()
			p.Backend.Service.Name = primary
			toCanary.Backend.Service.Name = canary
			paths = append(paths, p, toCanary)
		}
		rule.HTTP.Paths = paths
	}
	if !found {
		return nil, fmt.Errorf("the Ingress %s/%s has no rule path on the Service %s, so there is nothing to route to the canary", source.Namespace, source.Name, apex)
	}

	weights, err := json.Marshal(map[string]int{primary: routes.Primary, canary: routes.Canary})
	if err != nil {
		return nil, err
	}
	first := skipperPreferred
	if routes.Canary == 0 {
		first = skipperDisabled
	}
	out.Labels = make(map[string]string, len(source.Labels))
	for k, v := range source.Labels {
		if !strings.Contains(k, fluxAnnotation) {
			out.Labels[k] = v
		}
	}
	out.Annotations = make(map[string]string, len(source.Annotations)+2)
	for k, v := range source.Annotations {
		if k != lastAppliedAnnotation && !strings.Contains(k, fluxAnnotation) {
			out.Annotations[k] = v
		}
	}
	out.Annotations[skipperBackendWeights] = string(weights)
	out.Annotations[skipperPredicate] = skipperPredicates(first, source.Annotations[skipperPredicate])
	return out, nil
}

// skipperPredicates returns first followed by the user's predicates, less
// the ones Sluice sets.
func skipperPredicates(first, user string) string {
	out := []string{first}
	for p := range strings.SplitSeq(user, "&&") {
		if p = strings.TrimSpace(p); p != "" && p != skipperPreferred && p != skipperDisabled {
			out = append(out, p)
		}
	}
	return strings.Join(out, " && ")
}

// skipperRoutes reads the split from a canary Ingress's annotations.
func skipperRoutes(annotations map[string]string, cd *flaggerv1beta1.Canary) (Routes, error) {
	_, primary, canary := ServiceNames(cd)
	raw, ok := annotations[skipperBackendWeights]
	if !ok {
		return Routes{}, fmt.Errorf("it lacks the annotation %s", skipperBackendWeights)
	}
	var weights map[string]int
	if err := json.Unmarshal([]byte(raw), &weights); err != nil {
		return Routes{}, fmt.Errorf("annotation %s: %w", skipperBackendWeights, err)
	}
	backends := make([]weightedBackend, 0, len(weights))
	for name, w := range weights {
		backends = append(backends, weightedBackend{name: name, weight: w})
	}
	return splitOf(backends, primary, canary, false), nil
}
