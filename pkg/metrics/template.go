package metrics

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"text/template"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// DefaultInterval is the window of a metric without an interval.
const DefaultInterval = "1m"

// QueryModel is what a query template can read. Templates call its fields
// as functions, as Flagger's do: {{ name }}, {{ namespace }}, {{ target }},
// {{ service }}, {{ ingress }}, {{ route }}, {{ interval }} and
// {{ variables.NAME }}.
type QueryModel struct {
	// Name is the Canary's name.
	Name string
	// Namespace is the Canary's namespace.
	Namespace string
	// Target is the name of the target workload (spec.targetRef.name).
	Target string
	// Service is spec.service.name, or Target when unset.
	Service string
	// Ingress is spec.ingressRef.name, or Target when unset.
	Ingress string
	// Route is spec.routeRef.name, or Target when unset. For a Knative
	// Service target the ClusterResolver sets it to the Service's latest
	// created revision, as Flagger does.
	Route string
	// Interval is the metric's interval, DefaultInterval when unset.
	Interval string
	// Variables are the metric's templateVariables.
	Variables map[string]string
}

// NewQueryModel returns what the query of metric m of Canary cd can read.
func NewQueryModel(cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) QueryModel {
	target := cd.Spec.TargetRef.Name
	orTarget := func(s string) string {
		if s == "" {
			return target
		}
		return s
	}
	qm := QueryModel{
		Name:      cd.Name,
		Namespace: cd.Namespace,
		Target:    target,
		Service:   orTarget(cd.Spec.Service.Name),
		Ingress:   target,
		Route:     target,
		Interval:  m.Interval,
		Variables: maps.Clone(m.TemplateVariables),
	}
	if cd.Spec.IngressRef != nil {
		qm.Ingress = orTarget(cd.Spec.IngressRef.Name)
	}
	if cd.Spec.RouteRef != nil {
		qm.Route = orTarget(cd.Spec.RouteRef.Name)
	}
	if qm.Interval == "" {
		qm.Interval = DefaultInterval
	}
	if qm.Variables == nil {
		qm.Variables = map[string]string{}
	}
	return qm
}

// Render renders text, a Go text/template named name, with the model. A
// key missing from the variables, an unknown function or a syntax error is
// an error that names the template.
func (qm QueryModel) Render(name, text string) (string, error) {
	str := func(s string) func() string { return func() string { return s } }
	t, err := template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"name":      str(qm.Name),
		"namespace": str(qm.Namespace),
		"target":    str(qm.Target),
		"service":   str(qm.Service),
		"ingress":   str(qm.Ingress),
		"route":     str(qm.Route),
		"interval":  str(qm.Interval),
		"variables": func() map[string]string { return qm.Variables },
	}).Parse(text)
	if err != nil {
		return "", fmt.Errorf("parsing the query of %s: %w", name, err)
	}
	var b strings.Builder
	if err := t.Execute(&b, nil); err != nil {
		if strings.Contains(err.Error(), "map has no entry for key") {
			return "", fmt.Errorf("rendering the query of %s: %w (set it in the metric's templateVariables)", name, err)
		}
		return "", fmt.Errorf("rendering the query of %s: %w", name, err)
	}
	return b.String(), nil
}

// window parses the metric's interval.
func (qm QueryModel) window() (time.Duration, error) {
	d, err := time.ParseDuration(qm.Interval)
	if err != nil {
		return 0, fmt.Errorf("the interval %q is not a duration: %w", qm.Interval, err)
	}
	if d <= 0 {
		return 0, fmt.Errorf("the interval %q is not a positive duration such as 1m", qm.Interval)
	}
	return d, nil
}

// resolvedTemplate is a MetricTemplate metric ready to run.
type resolvedTemplate struct {
	// source names the metric and its template, for error messages.
	source string
	config ProviderConfig
	query  string
}

// resolveTemplate reads the MetricTemplate of metric m, renders its query
// with qm and reads its Secret. Errors name the metric, the template and the
// problem. defaultAddress is used by prometheus templates without an
// address.
func resolveTemplate(ctx context.Context, r client.Reader, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric, qm QueryModel, defaultAddress string, noCrossNamespace bool) (resolvedTemplate, error) {
	key := types.NamespacedName{Namespace: m.TemplateRef.Namespace, Name: m.TemplateRef.Name}
	if key.Namespace == "" {
		key.Namespace = cd.Namespace
	}
	source := fmt.Sprintf("metric %q, MetricTemplate %s", m.Name, key)
	fail := func(format string, args ...any) (resolvedTemplate, error) {
		return resolvedTemplate{}, fmt.Errorf("%s: %w", source, fmt.Errorf(format, args...))
	}
	if noCrossNamespace && key.Namespace != cd.Namespace {
		return fail("refers to another namespace than the Canary's %s, which -no-cross-namespace-refs forbids", cd.Namespace)
	}
	var mt flaggerv1beta1.MetricTemplate
	if err := r.Get(ctx, key, &mt); err != nil {
		if apierrors.IsNotFound(err) {
			return fail("the MetricTemplate does not exist")
		}
		return fail("reading the MetricTemplate: %w", err)
	}
	window, err := qm.window()
	if err != nil {
		return fail("%w", err)
	}
	query, err := qm.Render("MetricTemplate "+key.String(), mt.Spec.Query)
	if err != nil {
		return fail("%w", err)
	}
	p := mt.Spec.Provider
	if noCrossNamespace {
		if ns, ok := queryNamespace(p.Type, query); ok && ns != cd.Namespace {
			return fail("its %s query reads namespace %s, not the Canary's %s, which -no-cross-namespace-refs forbids", p.Type, ns, cd.Namespace)
		}
	}
	cfg := ProviderConfig{
		Type:               p.Type,
		Address:            p.Address,
		Headers:            p.Headers,
		Region:             p.Region,
		InsecureSkipVerify: p.InsecureSkipVerify,
		Window:             window,
	}
	if p.SecretRef != nil {
		sk := types.NamespacedName{Namespace: key.Namespace, Name: p.SecretRef.Name}
		var s corev1.Secret
		if err := r.Get(ctx, sk, &s); err != nil {
			if apierrors.IsNotFound(err) {
				return fail("its secretRef Secret %s does not exist", sk)
			}
			return fail("reading its secretRef Secret %s: %w", sk, err)
		}
		cfg.Credentials = make(map[string]string, len(s.Data))
		for k, v := range s.Data {
			cfg.Credentials[k] = string(v)
		}
		if addr, ok := cfg.Credentials["address"]; ok {
			cfg.Address = addr
		}
	}
	if cfg.Address == "" && cfg.Type == flaggerv1beta1.MetricProviderPrometheus {
		cfg.Address = defaultAddress
	}
	return resolvedTemplate{source: source, config: cfg, query: query}, nil
}

// queryNamespace returns the namespace that a query of a keptn or
// externalmetrics template reads; ok is false for the other providers,
// whose queries name none, and for a query that does not parse (running
// it reports why).
func queryNamespace(providerType, query string) (ns string, ok bool) {
	switch providerType {
	case flaggerv1beta1.MetricProviderKeptn:
		if kq, err := parseKeptnQuery(query); err == nil {
			return kq.namespace, true
		}
	case flaggerv1beta1.MetricProviderExternalMetrics:
		if eq, err := parseExternalMetricsQuery(query); err == nil {
			return eq.namespace, true
		}
	}
	return "", false
}
