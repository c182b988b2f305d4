// Package problem holds the one type Sluice uses for input it cannot act
// on: a Canary, or an object it refers to, that a person must change. The
// reason names the cause in one word and is what the Canary's Valid
// condition, its Warning event and its alert all carry; the message says
// what is wrong and what to do.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package problem

import (
	"errors"
	"fmt"
	"time"
)

// Reason is the one-word cause of a problem, the reason of the Valid
// condition.
type Reason string

// The reasons. Adding a rule is adding a reason here and returning a
// Problem with it where the rule is checked; the condition, the event and
// the alert follow.
const (
	// TargetNotFound: the targetRef workload does not exist.
	TargetNotFound Reason = "TargetNotFound"
	// UnsupportedTarget: the targetRef kind or apiVersion is not one Sluice operates.
	UnsupportedTarget Reason = "UnsupportedTarget"
	// SelectorLabelNotFound: the target's selector has none of the -selector-labels.
	SelectorLabelNotFound Reason = "SelectorLabelNotFound"
	// AutoscalerNotFound: the autoscalerRef does not exist.
	AutoscalerNotFound Reason = "AutoscalerNotFound"
	// UnsupportedAutoscaler: the autoscalerRef kind is not one Sluice operates.
	UnsupportedAutoscaler Reason = "UnsupportedAutoscaler"
	// ConfigNotFound: a ConfigMap or Secret the pod template needs does not exist.
	ConfigNotFound Reason = "ConfigNotFound"
	// NotOwned: an object Sluice must write exists and belongs to someone else.
	NotOwned Reason = "NotOwned"
	// UnsupportedProvider: spec.provider (or -mesh-provider) names no router.
	UnsupportedProvider Reason = "UnsupportedProvider"
	// UnsupportedRouting: the provider cannot build the routing the spec asks
	// for, or an object the routing refers to is missing.
	UnsupportedRouting Reason = "UnsupportedRouting"
	// MetricUnavailable: a metric cannot be resolved or its provider does not answer.
	MetricUnavailable Reason = "MetricUnavailable"
	// CrossNamespaceReference: a reference to another namespace that
	// -no-cross-namespace-refs forbids.
	CrossNamespaceReference Reason = "CrossNamespaceReference"
	// DuplicateTarget: another Canary already manages the target.
	DuplicateTarget Reason = "DuplicateTarget"
	// InvalidSpec: a spec value the API server accepted (Flagger's schema
	// allows it) that Sluice cannot run.
	InvalidSpec Reason = "InvalidSpec"
)

// Problem is input Sluice cannot act on until a person changes it. It is an
// error, so that the code that finds it can return it through the usual
// paths; the reconciler reports it instead of retrying with backoff.
type Problem struct {
	// Reason names the cause.
	Reason Reason
	// Message says what is wrong and what to do, in a sentence.
	Message string
	// RetryAfter, when set, looks at the Canary again after this long: the
	// cause may go away without any change that a watch sees (a metrics
	// provider that does not answer, an object of a kind Sluice does not
	// watch).
	RetryAfter time.Duration
}

func (p *Problem) Error() string { return p.Message }

// New returns a Problem with a formatted message.
func New(reason Reason, format string, args ...any) *Problem {
	return &Problem{Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Retry returns a copy of p that is looked at again after d.
func (p *Problem) Retry(d time.Duration) *Problem {
	c := *p
	c.RetryAfter = d
	return &c
}

// As returns the Problem in err's chain, if any.
func As(err error) (*Problem, bool) {
	var p *Problem
	ok := errors.As(err, &p)
	return p, ok
}

// Is reports whether err, or an error it wraps, is a Problem with the reason.
func Is(err error, reason Reason) bool {
	p, ok := As(err)
	return ok && p.Reason == reason
}
