package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Provider is a metrics backend (Prometheus, Datadog, ...). A provider is
// one file plus one line in the registry of the resolver that builds it.
type Provider interface {
	// RunQuery runs a query that must return a single number.
	RunQuery(ctx context.Context, query string) (float64, error)
	// IsOnline reports whether the backend answers.
	IsOnline(ctx context.Context) (bool, error)
}

// NotingProvider is a Provider whose answer may carry a remark for the
// check's message even when it has a value: that several series came back
// and which one was taken, for example. The Analyzer prefers it to
// RunQuery.
type NotingProvider interface {
	Provider
	// RunQueryNoted is RunQuery plus a remark, empty when there is none.
	RunQueryNoted(ctx context.Context, query string) (float64, string, error)
}

// ErrNoValues is returned by providers when a query returned no data. An
// error that says the value is NaN also matches it with errors.Is: both mean
// that there was nothing to measure, usually no traffic in the window.
var ErrNoValues = errors.New("the query returned no values")

// ErrNaN is returned by providers when a query's value is NaN, as a ratio of
// two zero rates is. errors.Is(ErrNaN, ErrNoValues) is true.
var ErrNaN error = noData("the query returned NaN (not a number), usually a ratio of zero rates: no requests in the window")

// noData is an error that means "nothing to measure"; it matches ErrNoValues.
type noData string

func (e noData) Error() string { return string(e) }

// Is makes errors.Is(err, ErrNoValues) true for every noData.
func (e noData) Is(target error) bool { return target == ErrNoValues }

// Resolver turns one metric of a Canary into the provider that answers it
// and the rendered query. An error means the metric cannot be evaluated
// (unknown name, missing template, missing credentials); the check fails
// with that error rather than passing.
type Resolver interface {
	Resolve(ctx context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (Provider, string, error)
}

// Analyzer runs the metric checks of an analysis step.
type Analyzer struct {
	// Resolver finds the provider and query of each metric.
	Resolver Resolver
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Observe, when set, receives the provider kind (prometheus, datadog,
	// ...), the latency and the error of every query, for
	// sluice_metric_query_duration_seconds.
	Observe func(provider string, took time.Duration, err error)
}

// Analyze runs every metric of the Canary and returns one result each, in
// the spec's order. It never returns a passing result for a metric it could
// not evaluate.
func (a *Analyzer) Analyze(ctx context.Context, cd *flaggerv1beta1.Canary) []flaggerv1beta1.CanaryCheckResult {
	if cd.Spec.Analysis == nil {
		return nil
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	results := make([]flaggerv1beta1.CanaryCheckResult, 0, len(cd.Spec.Analysis.Metrics))
	ran := queries{}
	for _, m := range cd.Spec.Analysis.Metrics {
		r := flaggerv1beta1.CanaryCheckResult{Time: metav1.NewTime(now()), Kind: flaggerv1beta1.CheckMetric, Name: m.Name, DryRun: m.DryRun}
		if m.Compare != nil {
			r = a.compare(ctx, cd, m, r, now())
		} else {
			r = a.check(ctx, cd, m, ran, r)
		}
		r.Message, r.Query = Redact(r.Message), Redact(r.Query)
		results = append(results, r)
	}
	return results
}

// check runs one metric and judges its value.
func (a *Analyzer) check(ctx context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric, ran queries, r flaggerv1beta1.CanaryCheckResult) flaggerv1beta1.CanaryCheckResult {
	p, query, err := a.Resolver.Resolve(ctx, cd, m)
	if err != nil {
		r.Message = err.Error()
		return r
	}
	r.Query = query
	rng, err := Bounds(m)
	if err != nil {
		r.Message = err.Error()
		return r
	}
	r.Min, r.Max = rng.Min, rng.Max
	ans := ran.run(ctx, a, p, query)
	switch {
	case errors.Is(ans.err, ErrNoValues):
		r.NoData = true
		r.Passed, r.Held, r.Message = applyNoData(m.OnNoData, ans.err)
	case ans.err != nil:
		r.Message = fmt.Sprintf("query failed: %v", ans.err)
	default:
		v := ans.v
		r.Value = &v
		r.Passed, r.Message = Within(v, rng)
	}
	if ans.note != "" {
		r.Message = strings.TrimPrefix(r.Message+"; "+ans.note, "; ")
	}
	return r
}

// Bounds returns the range a metric's value must stay in: its
// thresholdRange or, without one, its deprecated threshold as Flagger reads
// it: the minimum of the builtin request-success-rate and the maximum of
// every other metric (request-duration, inline queries and templates), so
// that a value above it fails. A metric with neither, or with a
// thresholdRange that bounds nothing, is an error: such a check could
// never fail. A threshold of 0 counts as unset (the API cannot tell
// them apart); write thresholdRange: {max: 0} instead.
func Bounds(m flaggerv1beta1.CanaryMetric) (*flaggerv1beta1.CanaryThresholdRange, error) {
	switch tr := m.ThresholdRange; {
	case tr != nil && (tr.Min != nil || tr.Max != nil):
		return tr, nil
	case tr != nil:
		return nil, fmt.Errorf("metric %q: its thresholdRange sets neither min nor max, so the check could never fail; set at least one", m.Name)
	case m.Threshold != 0 && math.IsNaN(m.Threshold):
		return nil, fmt.Errorf("metric %q: its threshold is not a number; set thresholdRange", m.Name)
	case m.Threshold != 0 && m.TemplateRef == nil && m.Query == "" && m.Name == BuiltinRequestSuccessRate:
		return &flaggerv1beta1.CanaryThresholdRange{Min: &m.Threshold}, nil
	case m.Threshold != 0:
		return &flaggerv1beta1.CanaryThresholdRange{Max: &m.Threshold}, nil
	}
	return nil, fmt.Errorf("metric %q has neither thresholdRange nor threshold, so the check could never fail: "+
		"set thresholdRange.min and/or thresholdRange.max (a threshold of 0 counts as unset)", m.Name)
}

// OneLine collapses the runs of white space in a rendered query into single
// spaces, so that a multi-line template reads well in a message or an event.
func OneLine(query string) string {
	return strings.Join(strings.Fields(query), " ")
}

// queries remembers the answers of one step, so that two metrics with the
// same query on the same provider cost one request.
type queries map[queryKey]answer

type queryKey struct {
	p     any
	query string
}

type answer struct {
	v    float64
	note string
	err  error
}

func (q queries) run(ctx context.Context, a *Analyzer, p Provider, query string) answer {
	id, comparable := identity(p)
	key := queryKey{id, query}
	if ans, ok := q[key]; ok && comparable {
		return ans
	}
	start := time.Now()
	var ans answer
	if np, ok := p.(NotingProvider); ok {
		ans.v, ans.note, ans.err = np.RunQueryNoted(ctx, query)
	} else {
		ans.v, ans.err = p.RunQuery(ctx, query)
	}
	if a.Observe != nil {
		a.Observe(KindOf(p), time.Since(start), ans.err)
	}
	if comparable {
		q[key] = ans
	}
	return ans
}

// identity returns a provider as a map key when its type can be one
// (providers are pointers in practice); otherwise answers are not shared.
func identity(p Provider) (any, bool) {
	if t := reflect.TypeOf(p); t == nil || !t.Comparable() {
		return nil, false
	}
	return p, true
}

// KindOf names a provider's kind for metrics and logs: its Go type's name
// in lower case, such as prometheus or datadog.
func KindOf(p Provider) string {
	name := fmt.Sprintf("%T", p)
	if i := strings.LastIndex(name, "."); i >= 0 {
		name = name[i+1:]
	}
	return strings.ToLower(strings.TrimPrefix(name, "*"))
}

// Check resolves every metric of the Canary and asks each provider whether
// it answers, without running the analysis queries. It returns an error
// naming the first metric that cannot be evaluated, so that an analysis
// never starts on checks that could not run.
func (a *Analyzer) Check(ctx context.Context, cd *flaggerv1beta1.Canary) error {
	if cd.Spec.Analysis == nil || cd.Spec.SkipAnalysis {
		return nil
	}
	checked := map[any]bool{}
	for _, m := range cd.Spec.Analysis.Metrics {
		p, _, err := a.Resolver.Resolve(ctx, cd, m)
		if err != nil {
			return redactError(err)
		}
		if m.Compare == nil {
			// A comparison is judged against the primary, not bounds.
			if _, err := Bounds(m); err != nil {
				return err
			}
		}
		if id, ok := identity(p); ok {
			if checked[id] {
				continue
			}
			checked[id] = true
		}
		online, err := p.IsOnline(ctx)
		switch {
		case err != nil:
			return redactError(fmt.Errorf("metric %s: its provider does not answer: %w", m.Name, err))
		case !online:
			return fmt.Errorf("metric %s: its provider is not online", m.Name)
		}
	}
	return nil
}

// applyNoData applies a metric's onNoData policy to a query without data.
func applyNoData(policy flaggerv1beta1.NoDataPolicy, err error) (passed, held bool, msg string) {
	switch policy {
	case flaggerv1beta1.NoDataSkip:
		return true, false, fmt.Sprintf("%v; skipped (onNoData: skip)", err)
	case flaggerv1beta1.NoDataHold:
		return false, true, fmt.Sprintf("%v; holding the step (onNoData: hold)", err)
	default:
		return false, false, err.Error()
	}
}

// Within reports whether v lies in the range (both ends inclusive) and, when
// it does not, says by how much it missed. NaN and infinities never pass.
func Within(v float64, rng *flaggerv1beta1.CanaryThresholdRange) (bool, string) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return false, fmt.Sprintf("the value %v is not a number", v)
	}
	if rng == nil {
		return true, ""
	}
	if rng.Min != nil && v < *rng.Min {
		return false, fmt.Sprintf("%g is below the minimum %g", v, *rng.Min)
	}
	if rng.Max != nil && v > *rng.Max {
		return false, fmt.Sprintf("%g is above the maximum %g", v, *rng.Max)
	}
	return true, ""
}
