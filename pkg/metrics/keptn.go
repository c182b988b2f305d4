package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

const (
	// keptnAnalysisWait is how long a query waits for Keptn to complete
	// the Analysis it created, as in Flagger.
	keptnAnalysisWait = 10 * time.Second
	// keptnAnalysisPoll is how often the Analysis is read while waiting.
	keptnAnalysisPoll = 500 * time.Millisecond
	// keptnDefaultTimeframe is the timeframe of an analysis query without
	// one, as in Flagger.
	keptnDefaultTimeframe = "1m"
)

// keptnGroupVersion is the Keptn metrics API Flagger reads.
var keptnGroupVersion = schema.GroupVersion{Group: "metrics.keptn.sh", Version: "v1beta1"}

// Keptn reads Keptn's metrics API (metrics.keptn.sh/v1beta1, as Flagger)
// in the cluster Sluice runs in, with Sluice's own Kubernetes client and
// permissions. Its query takes one of two forms, split by "/":
//
//	keptnmetric/<namespace>/<name>
//	analysis/<namespace>/<analysis-definition>[/<timeframe>[/<key>=<value>;...]]
//
// The first returns status.value of the KeptnMetric, a number Keptn's
// metrics operator keeps up to date; a KeptnMetric without a value yet is
// ErrNoValues. Further parts after the name are ignored, as in Flagger.
//
// The second creates an Analysis of the AnalysisDefinition in that
// namespace over the last timeframe (a duration, 1m by default) with the
// given arguments, waits up to ten seconds for Keptn to complete it, and
// returns 1 when it passed and 0 when it failed; the Analysis is deleted
// afterwards, whatever the outcome. Sluice reads a completed Analysis
// without status.pass as failed (Keptn omits the field when it is false).
//
// As in Flagger, the whole query is lower-cased, argument values
// included. A malformed query, an argument that is not key=value, an
// unknown or missing object and an Analysis that does not complete in time
// are errors that say so. The template's address and Secret are not used.
type Keptn struct {
	kube    client.Client
	timeout time.Duration // bounds each API call
	wait    time.Duration // bounds the wait for an Analysis
	poll    time.Duration
}

// NewKeptn returns a Keptn provider that works with cfg.Kube.
func NewKeptn(cfg ProviderConfig) (*Keptn, error) {
	if cfg.Kube == nil {
		return nil, errors.New("keptn: no Kubernetes client was given to the metric providers")
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultQueryTimeout
	}
	return &Keptn{kube: cfg.Kube, timeout: timeout, wait: keptnAnalysisWait, poll: keptnAnalysisPoll}, nil
}

// keptnQuery is a parsed Keptn query.
type keptnQuery struct {
	// analysis is true for analysis/..., false for keptnmetric/....
	analysis  bool
	namespace string
	name      string
	timeframe string
	args      map[string]string
}

// keptnQueryForms documents the query in error messages.
const keptnQueryForms = "keptnmetric/<namespace>/<name> or analysis/<namespace>/<analysis-definition>[/<timeframe>[/<key>=<value>;...]]"

// parseKeptnQuery reads a Keptn query (see Keptn).
func parseKeptnQuery(query string) (keptnQuery, error) {
	parts := strings.Split(strings.ToLower(strings.TrimSpace(query)), "/")
	if len(parts) < 3 {
		return keptnQuery{}, fmt.Errorf("keptn: the query %q is not %s", OneLine(query), keptnQueryForms)
	}
	q := keptnQuery{namespace: strings.TrimSpace(parts[1]), name: strings.TrimSpace(parts[2])}
	switch kind := strings.TrimSpace(parts[0]); kind {
	case "keptnmetric", "keptnmetrics":
	case "analysis", "analyses":
		q.analysis = true
	default:
		return keptnQuery{}, fmt.Errorf("keptn: the query starts with %q; it must be %s", kind, keptnQueryForms)
	}
	switch {
	case q.namespace == "":
		return keptnQuery{}, fmt.Errorf("keptn: the query %q has no namespace; it must be %s", OneLine(query), keptnQueryForms)
	case q.name == "":
		return keptnQuery{}, fmt.Errorf("keptn: the query %q has no name; it must be %s", OneLine(query), keptnQueryForms)
	case !q.analysis:
		return q, nil
	case len(parts) > 5:
		return keptnQuery{}, fmt.Errorf("keptn: the query %q has %d parts; an analysis query has at most five: %s", OneLine(query), len(parts), keptnQueryForms)
	}
	q.timeframe = keptnDefaultTimeframe
	if len(parts) > 3 && strings.TrimSpace(parts[3]) != "" {
		q.timeframe = strings.TrimSpace(parts[3])
	}
	if d, err := time.ParseDuration(q.timeframe); err != nil || d <= 0 {
		return keptnQuery{}, fmt.Errorf("keptn: the timeframe %q of the query is not a positive duration such as 5m", q.timeframe)
	}
	q.args = map[string]string{}
	if len(parts) > 4 {
		for _, arg := range strings.Split(parts[4], ";") {
			if arg = strings.TrimSpace(arg); arg == "" {
				continue
			}
			k, v, ok := strings.Cut(arg, "=")
			if !ok || k == "" || strings.Contains(v, "=") {
				return keptnQuery{}, fmt.Errorf("keptn: the argument %q of the query is not <key>=<value> (arguments are separated by ;)", arg)
			}
			q.args[k] = v
		}
	}
	return q, nil
}

// RunQuery reads the KeptnMetric or runs the Analysis the query names.
func (k *Keptn) RunQuery(ctx context.Context, query string) (float64, error) {
	q, err := parseKeptnQuery(query)
	if err != nil {
		return 0, err
	}
	if q.analysis {
		return k.runAnalysis(ctx, q)
	}
	return k.readMetric(ctx, q)
}

// keptnObject returns an empty object of Keptn's kind.
func keptnObject(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(keptnGroupVersion.WithKind(kind))
	return u
}

// explainKeptnError says what failed when doing action on object, and
// what to check.
func explainKeptnError(err error, action, object string) error {
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("keptn: %s does not exist", object)
	case apimeta.IsNoMatchError(err):
		return fmt.Errorf("keptn: %s %s: Keptn's API %s is not installed in the cluster: %w", action, object, keptnGroupVersion, err)
	case apierrors.IsForbidden(err):
		return fmt.Errorf("keptn: %s %s: Sluice's service account may not do this (check its ClusterRole): %w", action, object, err)
	}
	return fmt.Errorf("keptn: %s %s: %w", action, object, err)
}

// readMetric returns status.value of the KeptnMetric.
func (k *Keptn) readMetric(ctx context.Context, q keptnQuery) (float64, error) {
	what := fmt.Sprintf("KeptnMetric %s/%s", q.namespace, q.name)
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	m := keptnObject("KeptnMetric")
	if err := k.kube.Get(ctx, types.NamespacedName{Namespace: q.namespace, Name: q.name}, m); err != nil {
		return 0, explainKeptnError(err, "reading", what)
	}
	return keptnMetricValue(m.Object, what)
}

// keptnMetricValue reads status.value of a KeptnMetric object (what names
// it in errors): a number written as a string.
func keptnMetricValue(obj map[string]any, what string) (float64, error) {
	value, _, err := unstructured.NestedString(obj, "status", "value")
	if err != nil {
		return 0, fmt.Errorf("keptn: %s: status.value is not a string: %w", what, err)
	}
	if value = strings.TrimSpace(value); value == "" {
		detail := ""
		if msg, _, _ := unstructured.NestedString(obj, "status", "errMsg"); msg != "" {
			detail = " (Keptn reports: " + OneLine(msg) + ")"
		}
		return 0, fmt.Errorf("%w: %s has no value yet%s", ErrNoValues, what, detail)
	}
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return 0, fmt.Errorf("keptn: the value %q of %s is not a number", value, what)
	}
	if math.IsNaN(v) {
		return 0, ErrNaN
	}
	return v, nil
}

// runAnalysis creates an Analysis, waits for Keptn to complete it,
// deletes it and returns 1 if it passed, 0 if it failed.
func (k *Keptn) runAnalysis(ctx context.Context, q keptnQuery) (float64, error) {
	definition := fmt.Sprintf("AnalysisDefinition %s/%s", q.namespace, q.name)
	a := keptnObject("Analysis")
	a.SetNamespace(q.namespace)
	a.SetGenerateName(q.name + "-")
	a.SetLabels(map[string]string{"app.kubernetes.io/managed-by": "sluice"})
	spec := map[string]any{
		"analysisDefinition": map[string]any{"name": q.name},
		"timeframe":          map[string]any{"recent": q.timeframe},
	}
	if len(q.args) > 0 {
		args := make(map[string]any, len(q.args))
		for key, v := range q.args {
			args[key] = v
		}
		spec["args"] = args
	}
	a.Object["spec"] = spec
	createCtx, cancel := context.WithTimeout(ctx, k.timeout)
	err := k.kube.Create(createCtx, a)
	cancel()
	switch {
	case apierrors.IsNotFound(err):
		return 0, fmt.Errorf("keptn: creating an Analysis of %s: the namespace %s does not exist", definition, q.namespace)
	case err != nil:
		return 0, explainKeptnError(err, "creating an Analysis of", definition)
	}
	name := types.NamespacedName{Namespace: a.GetNamespace(), Name: a.GetName()}
	defer k.deleteAnalysis(ctx, a)

	waitCtx, cancel := context.WithTimeout(ctx, k.wait)
	defer cancel()
	state := "no state"
	var readErr error // the last failed read, reported if the wait ends
	ticker := time.NewTicker(k.poll)
	defer ticker.Stop()
	for {
		select {
		case <-waitCtx.Done():
			if ctx.Err() != nil {
				return 0, fmt.Errorf("keptn: waiting for Analysis %s of %s: %w", name, definition, ctx.Err())
			}
			detail := ""
			if readErr != nil {
				detail = fmt.Sprintf("; the last read failed: %v", readErr)
			}
			return 0, fmt.Errorf("keptn: Analysis %s of %s did not complete within %s (%s%s); is Keptn's metrics operator running, and does the AnalysisDefinition exist?",
				name, definition, k.wait, state, detail)
		case <-ticker.C:
		}
		got := keptnObject("Analysis")
		// Not bounded by the wait: a read that has started may finish.
		getCtx, cancel := context.WithTimeout(ctx, k.timeout)
		err := k.kube.Get(getCtx, name, got)
		cancel()
		switch {
		case apierrors.IsNotFound(err):
			return 0, fmt.Errorf("keptn: Analysis %s of %s was deleted before it completed", name, definition)
		case err != nil:
			readErr = err // a transient failure: read again until the wait ends
			continue
		}
		readErr = nil
		if st, _, _ := unstructured.NestedString(got.Object, "status", "state"); st != "" {
			state = st
		}
		if state != "Completed" {
			continue
		}
		passed, _, err := unstructured.NestedBool(got.Object, "status", "pass")
		if err != nil {
			return 0, fmt.Errorf("keptn: Analysis %s: status.pass is not a boolean: %w", name, err)
		}
		if passed {
			return 1, nil
		}
		return 0, nil
	}
}

// deleteAnalysis deletes an Analysis the provider created, even when the
// query's context has ended; a failure is logged, not returned, since the
// result is already known.
func (k *Keptn) deleteAnalysis(ctx context.Context, a *unstructured.Unstructured) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), k.timeout)
	defer cancel()
	policy := metav1.DeletePropagationBackground
	if err := k.kube.Delete(ctx, a, &client.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
		log.FromContext(ctx).Error(err, "deleting the Keptn Analysis of a metric check", "analysis", a.GetNamespace()+"/"+a.GetName())
	}
}

// IsOnline lists one KeptnMetric, which fails when Keptn's API is not
// installed or Sluice may not read it.
func (k *Keptn) IsOnline(ctx context.Context) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	list := &unstructured.UnstructuredList{}
	list.SetGroupVersionKind(keptnGroupVersion.WithKind("KeptnMetricList"))
	if err := k.kube.List(ctx, list, client.Limit(1)); err != nil {
		return false, explainKeptnError(err, "listing", "KeptnMetrics")
	}
	return true, nil
}
