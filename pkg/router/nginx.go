package router

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// DefaultIngressAnnotationsPrefix is the prefix of the NGINX Ingress
// controller's annotations, used when Deps.IngressAnnotationsPrefix is
// empty.
const DefaultIngressAnnotationsPrefix = "nginx.ingress.kubernetes.io"

// lastAppliedAnnotation is kubectl's copy of the applied object; it
// describes the user's Ingress, not the copy, so it is not copied.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// errNoIngressRef is returned for a Canary without spec.ingressRef.
var errNoIngressRef = errors.New("nginx needs spec.ingressRef: it names the Ingress to copy for the canary")

// The NGINX canary annotations, without their prefix.
const (
	nginxCanary              = "canary"
	nginxCanaryWeight        = "canary-weight"
	nginxCanaryByHeader      = "canary-by-header"
	nginxCanaryByHeaderValue = "canary-by-header-value"
	nginxCanaryByHeaderRegex = "canary-by-header-pattern"
	nginxCanaryByCookie      = "canary-by-cookie"
)

// nginxRouter is the router of provider "nginx". It reads the user's
// Ingress named by spec.ingressRef, which it never edits, and owns the
// canary Ingress <ingress>-canary: a copy of the user's Ingress whose
// backends on the apex Service go to the canary Service, marked with the
// NGINX Ingress controller's canary annotations. The controller sends a
// share of the traffic (canary-weight), or the requests that match a header
// or cookie during an A/B test, to the canary Ingress's backends.
//
// Rendering is pure (renderCanaryIngress); the object is written with
// Ensure, so an edit of someone else to its spec or to the canary
// annotations is reverted on the next Reconcile or SetRoutes.
type nginxRouter struct {
	client client.Client
	// prefix is the annotations' prefix, such as nginx.ingress.kubernetes.io.
	prefix string
}

// OwnedObjects implements ObjectOwner.
func (r *nginxRouter) OwnedObjects() []client.Object { return []client.Object{&networkingv1.Ingress{}} }

func newNGINXRouter(d Deps) Interface {
	return &nginxRouter{client: d.Client, prefix: cmp.Or(d.IngressAnnotationsPrefix, DefaultIngressAnnotationsPrefix)}
}

// Reconcile creates or updates the canary Ingress from the user's Ingress.
// It keeps the split the canary Ingress holds, or routes all traffic to
// the primary when it is new or its split cannot be read.
func (r *nginxRouter) Reconcile(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) error {
	if err := r.ensureCanaryIngress(ctx, cd, nil); err != nil {
		return fmt.Errorf("reconciling the canary Ingress of Canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	return nil
}

// SetRoutes writes the split into the canary Ingress's annotations. NGINX
// cannot mirror traffic, so a mirrored split is refused.
func (r *nginxRouter) SetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target, routes Routes) error {
	if err := checkSplit(cd, routes); err != nil {
		return err
	}
	if routes.Mirrored {
		return fmt.Errorf("canary %s/%s: the nginx provider cannot mirror traffic; remove analysis.mirror", cd.Namespace, cd.Name)
	}
	if err := r.ensureCanaryIngress(ctx, cd, &routes); err != nil {
		return fmt.Errorf("routing Canary %s/%s to primary %d%%, canary %d%%: %w", cd.Namespace, cd.Name, routes.Primary, routes.Canary, err)
	}
	return nil
}

// GetRoutes reads the split from the canary Ingress's annotations: all
// matching requests go to the canary when it routes by header or cookie,
// else the canary-weight share does (0 when unset, as NGINX reads it).
func (r *nginxRouter) GetRoutes(ctx context.Context, cd *flaggerv1beta1.Canary, _ Target) (Routes, error) {
	if cd.Spec.IngressRef == nil {
		return Routes{}, fmt.Errorf("canary %s/%s: %w", cd.Namespace, cd.Name, errNoIngressRef)
	}
	ing := &networkingv1.Ingress{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: canaryIngressName(cd)}
	if err := r.client.Get(ctx, key, ing); err != nil {
		return Routes{}, fmt.Errorf("reading the canary Ingress %s of Canary %s: %w", key, cd.Name, err)
	}
	routes, err := nginxRoutes(ing.Annotations, r.prefix)
	if err != nil {
		return Routes{}, fmt.Errorf("reading the split of the canary Ingress %s of Canary %s: %w", key, cd.Name, err)
	}
	return routes, nil
}

// Finalize does nothing: the canary Ingress is Sluice's own and is deleted
// with the Canary, and the user's Ingress was never edited.
func (r *nginxRouter) Finalize(context.Context, *flaggerv1beta1.Canary, Target) error {
	return nil
}

// canaryIngressName is the name of the canary Ingress.
func canaryIngressName(cd *flaggerv1beta1.Canary) string {
	return cd.Spec.IngressRef.Name + "-canary"
}

// readIngressRef reads the user's Ingress named in spec.ingressRef, which
// the nginx and skipper routers copy; a missing or wrong reference is a
// problem with the spec (errNoRef when there is none).
func readIngressRef(ctx context.Context, c client.Reader, cd *flaggerv1beta1.Canary, provider string, errNoRef error) (*networkingv1.Ingress, error) {
	ref := cd.Spec.IngressRef
	if ref == nil {
		return nil, configError(errNoRef)
	}
	if ref.Kind != "" && ref.Kind != "Ingress" || ref.APIVersion != "" && ref.APIVersion != networkingv1.SchemeGroupVersion.String() {
		return nil, configError(fmt.Errorf("spec.ingressRef is %s %s, but the %s provider reads an Ingress of %s", ref.APIVersion, ref.Kind, provider, networkingv1.SchemeGroupVersion))
	}
	source := &networkingv1.Ingress{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: cd.Namespace, Name: ref.Name}, source); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, configError(fmt.Errorf("the Ingress %s/%s named in spec.ingressRef does not exist: create it or fix spec.ingressRef", cd.Namespace, ref.Name))
		}
		return nil, fmt.Errorf("reading the Ingress %s/%s of spec.ingressRef: %w", cd.Namespace, ref.Name, err)
	}
	return source, nil
}

// ensureCanaryIngress reads the user's Ingress and creates or updates the
// canary Ingress with routes, or with the split it holds when routes is nil.
func (r *nginxRouter) ensureCanaryIngress(ctx context.Context, cd *flaggerv1beta1.Canary, routes *Routes) error {
	source, err := readIngressRef(ctx, r.client, cd, "nginx", errNoIngressRef)
	if err != nil {
		return err
	}
	ing := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: canaryIngressName(cd), Namespace: cd.Namespace}}
	return ensureSplit(ctx, r.client, cd, ing, routes,
		func() (Routes, error) { return nginxRoutes(ing.Annotations, r.prefix) },
		func(want Routes) error {
			desired, err := renderCanaryIngress(cd, source, r.prefix, want)
			if err != nil {
				return configError(err)
			}
			ing.Spec = desired.Spec
			// Canary annotations that are no longer wanted go, whoever set
			// them: NGINX would act on them.
			for k := range ing.Annotations {
				if _, ok := desired.Annotations[k]; !ok && isCanaryAnnotation(k, r.prefix) {
					delete(ing.Annotations, k)
				}
			}
			SetMetadata(ing, desired.Labels, desired.Annotations, nil)
			return nil
		})
}

// renderCanaryIngress returns the canary Ingress for a split: the name,
// namespace, labels, annotations and spec of the user's Ingress source,
// with
//
//   - the backends on the apex Service (the default backend and the rules'
//     paths) sent to the canary Service instead; it is an error when there
//     are none;
//   - the user's annotations except the canary ones (and kubectl's and
//     Flux's), plus <prefix>/canary "true" and <prefix>/canary-weight;
//   - during an A/B test that sends traffic to the canary, canary-weight
//     "0" and the header or cookie annotations of analysis.match (see
//     nginxMatchAnnotations). The split must then be 0/100 or 100/0.
func renderCanaryIngress(cd *flaggerv1beta1.Canary, source *networkingv1.Ingress, prefix string, routes Routes) (*networkingv1.Ingress, error) {
	apex, _, canary := ServiceNames(cd)
	out := &networkingv1.Ingress{ObjectMeta: metav1.ObjectMeta{Name: source.Name + "-canary", Namespace: source.Namespace}}
	source.Spec.DeepCopyInto(&out.Spec)
	found := rewriteBackend(out.Spec.DefaultBackend, apex, canary)
	for _, rule := range out.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for i := range rule.HTTP.Paths {
			found = rewriteBackend(&rule.HTTP.Paths[i].Backend, apex, canary) || found
		}
	}
	if !found {
		return nil, fmt.Errorf("the Ingress %s/%s has no backend on the Service %s, so there is nothing to route to the canary", source.Namespace, source.Name, apex)
	}

	labels := make(map[string]string, len(source.Labels))
	for k, v := range source.Labels {
		if !strings.Contains(k, fluxAnnotation) {
			labels[k] = v
		}
	}
	annotations := make(map[string]string, len(source.Annotations)+4)
	for k, v := range source.Annotations {
		if !isCanaryAnnotation(k, prefix) && k != lastAppliedAnnotation && !strings.Contains(k, fluxAnnotation) {
			annotations[k] = v
		}
	}
	annotations[prefix+"/"+nginxCanary] = "true"
	weight := routes.Canary
	if abTesting(cd) && routes.Canary > 0 {
		if routes.Canary != 100 {
			return nil, fmt.Errorf("an A/B test sends all matching requests to the canary or none, not %d%%", routes.Canary)
		}
		match, err := nginxMatchAnnotations(cd.Spec.Analysis.Match)
		if err != nil {
			return nil, err
		}
		for k, v := range match {
			annotations[prefix+"/"+k] = v
		}
		weight = 0
	}
	annotations[prefix+"/"+nginxCanaryWeight] = strconv.Itoa(weight)
	out.Labels, out.Annotations = labels, annotations
	return out, nil
}

// rewriteBackend points b at the canary Service when it is on the apex
// Service, and reports whether it was.
func rewriteBackend(b *networkingv1.IngressBackend, apex, canary string) bool {
	if b == nil || b.Service == nil || b.Service.Name != apex {
		return false
	}
	b.Service.Name = canary
	return true
}

// isCanaryAnnotation reports whether k is one of NGINX's canary
// annotations under prefix.
func isCanaryAnnotation(k, prefix string) bool {
	return strings.HasPrefix(k, prefix+"/"+nginxCanary)
}

// nginxMatchAnnotations returns the A/B annotations, without prefix, for
// the analysis.match entries. NGINX routes by at most one header and one
// cookie, tried in that order, so each entry must hold one condition, and
// the entries at most one header and one cookie:
//
//   - a header matched exactly: canary-by-header and canary-by-header-value;
//   - a header matched by regex: canary-by-header and canary-by-header-pattern;
//   - the header "cookie": canary-by-cookie, with the cookie's name taken
//     from the exact value (cookie: {exact: "canary"}) or from the regex
//     (a plain name, or "<name>=always" inside it). NGINX sends a request
//     to the canary when that cookie's value is "always".
func nginxMatchAnnotations(match []flaggerv1beta1.HTTPMatchConditions) (map[string]string, error) {
	f := &fieldErrors{}
	out := map[string]string{}
	for i, m := range match {
		field := fmt.Sprintf("spec.analysis.match[%d]", i)
		if len(m.QueryParams) > 0 || len(m.SourceLabels) > 0 {
			f.fail(field, errors.New("nginx routes A/B tests by header or cookie only"))
		}
		if len(m.Headers) != 1 {
			f.fail(field, errors.New("nginx needs exactly one header or cookie condition per match entry"))
			continue
		}
		for name, h := range m.Headers {
			field := field + ".headers." + name
			var err error
			switch c := cookieName(h); {
			case !strings.EqualFold(name, "cookie"):
				err = nginxHeader(out, name, h)
			case c == "":
				err = errors.New("nginx needs the cookie's name: write cookie: {exact: <name>}")
			default:
				err = setOnce(out, nginxCanaryByCookie, c, "", "")
			}
			if err != nil {
				f.fail(field, err)
			}
		}
	}
	if err := f.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// nginxHeader adds the annotations for one header condition to out.
func nginxHeader(out map[string]string, name string, h flaggerv1beta1.HeaderMatch) error {
	switch {
	case h.Exact != nil:
		return setOnce(out, nginxCanaryByHeader, name, nginxCanaryByHeaderValue, *h.Exact)
	case h.Regex != nil:
		return setOnce(out, nginxCanaryByHeader, name, nginxCanaryByHeaderRegex, *h.Regex)
	default:
		return errors.New("nginx matches headers exactly or by regex only")
	}
}

// setOnce sets key to name (and valueKey, when not empty, to value),
// failing when an earlier condition set key: NGINX has one of each.
func setOnce(out map[string]string, key, name, valueKey, value string) error {
	if _, ok := out[key]; ok {
		return fmt.Errorf("nginx routes by one header and one cookie only, and %s is already set", key)
	}
	out[key] = name
	if valueKey != "" {
		out[valueKey] = value
	}
	return nil
}

// cookieName returns the cookie name a cookie condition names, or "".
func cookieName(h flaggerv1beta1.HeaderMatch) string {
	if h.Exact != nil {
		return *h.Exact
	}
	if h.Regex == nil {
		return ""
	}
	re := *h.Regex
	if i := strings.Index(re, "=always"); i > 0 {
		re = re[:i]
		re = re[strings.LastIndexAny(re, "(;^ ")+1:]
	}
	if re == "" || strings.ContainsAny(re, `^$()[]{}*+?|\.;= `) {
		return ""
	}
	return re
}

// nginxRoutes reads the split from a canary Ingress's annotations.
func nginxRoutes(annotations map[string]string, prefix string) (Routes, error) {
	if annotations[prefix+"/"+nginxCanary] != "true" {
		return Routes{}, fmt.Errorf("it lacks the annotation %s/%s: \"true\"", prefix, nginxCanary)
	}
	if _, ok := annotations[prefix+"/"+nginxCanaryByHeader]; ok {
		return Routes{Canary: 100}, nil
	}
	if _, ok := annotations[prefix+"/"+nginxCanaryByCookie]; ok {
		return Routes{Canary: 100}, nil
	}
	w := 0
	if s, ok := annotations[prefix+"/"+nginxCanaryWeight]; ok {
		var err error
		if w, err = strconv.Atoi(s); err != nil {
			return Routes{}, fmt.Errorf("annotation %s/%s: %w", prefix, nginxCanaryWeight, err)
		}
	}
	return Routes{Primary: 100 - w, Canary: w}, nil
}
