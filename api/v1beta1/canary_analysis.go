package v1beta1

// CanaryAnalysis is the schedule and the checks a new revision goes through.
//
// The strategy follows from the fields that are set: iterations with match
// is A/B testing, iterations alone is blue/green (or mirroring with mirror),
// stepWeight or stepWeights is a canary release with progressive traffic
// shifting.
//
// +kubebuilder:validation:XValidation:rule="(has(self.iterations) ? 1 : 0) + (has(self.stepWeight) ? 1 : 0) + (has(self.stepWeights) ? 1 : 0) == 1",message="set exactly one of iterations (A/B testing, blue/green), stepWeight or stepWeights (canary)"
// +kubebuilder:validation:XValidation:rule="(has(self.baseline) && self.baseline) || !has(self.metrics) || self.metrics.all(m, !has(m.compare) || !has(m.compare.against) || m.compare.against == 'primary')",message="compare.against: baseline compares the canary with a <name>-baseline Deployment, which Sluice runs only with analysis.baseline: true; set it, or compare against: primary"
type CanaryAnalysis struct {
	// interval is the time between two analysis steps, as a duration such as
	// 30s, 1m or 1m30s. Sluice never runs steps closer than 10s apart. A
	// value that is not a duration but that Flagger's pattern admits (10sec)
	// counts as one minute, as in Flagger.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)|^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +required
	Interval string `json:"interval"`

	// threshold is the number of failed checks after which the revision is
	// rolled back. Values below 1 count as 1.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +required
	Threshold int32 `json:"threshold"`

	// iterations is the number of analysis steps for A/B testing and
	// blue/green releases.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +optional
	Iterations *int32 `json:"iterations,omitempty"`

	// maxWeight is the canary weight, in percent, at which the analysis
	// ends and promotion starts. Defaults to 100, or to the last entry of
	// stepWeights when those are set.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +optional
	MaxWeight *int32 `json:"maxWeight,omitempty"`

	// stepWeight is how much, in percent, the canary weight grows at each
	// successful step. The weight never passes maxWeight: a larger step goes
	// straight to it.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +optional
	StepWeight *int32 `json:"stepWeight,omitempty"`

	// stepWeights are the canary weights, in percent, that successful steps
	// go through, for example [1, 5, 20, 50]. Sluice takes them in ascending
	// order; the last entry is the maximum weight, where promotion starts.
	// +kubebuilder:validation:items:Type=number
	// +kubebuilder:validation:items:Format=""
	// +kubebuilder:validation:items:Minimum=-2147483648
	// +kubebuilder:validation:items:Maximum=2147483647
	// +kubebuilder:validation:items:MultipleOf=1
	// +optional
	StepWeights []int32 `json:"stepWeights,omitempty"`

	// stepWeightPromotion, when above zero, moves traffic back to the
	// promoted primary gradually, by this many percent per interval, instead
	// of all at once.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +optional
	StepWeightPromotion int32 `json:"stepWeightPromotion,omitempty"`

	// mirror copies the primary's traffic to the canary (traffic shadowing)
	// during blue/green analysis, where the provider can. The canary's
	// answers are discarded. Defaults to false.
	// +optional
	Mirror bool `json:"mirror,omitempty"`

	// mirrorWeight is the percentage of requests that are mirrored when
	// mirror is set. Unset means all requests.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +optional
	MirrorWeight int32 `json:"mirrorWeight,omitempty"`

	// primaryReadyThreshold is the percentage of primary replicas that must
	// be available for the primary to count as ready. Defaults to 100.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +kubebuilder:default=100
	// +optional
	PrimaryReadyThreshold *int32 `json:"primaryReadyThreshold,omitempty"`

	// canaryReadyThreshold is the percentage of canary replicas that must be
	// available for the canary to count as ready. Defaults to 100.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +kubebuilder:default=100
	// +optional
	CanaryReadyThreshold *int32 `json:"canaryReadyThreshold,omitempty"`

	// match are the request conditions that send a request to the canary
	// during A/B testing; a request that meets any one entry goes to the
	// canary.
	// +optional
	Match []HTTPMatchConditions `json:"match,omitempty"`

	// metrics are the checks run at every analysis step.
	// +optional
	Metrics []CanaryMetric `json:"metrics,omitempty"`

	// webhooks are the HTTP calls made at the stages of the analysis
	// (gates, load tests, notifications).
	// +optional
	Webhooks []CanaryWebhook `json:"webhooks,omitempty"`

	// alerts send the canary's events to AlertProviders.
	// +optional
	Alerts []CanaryAlert `json:"alerts,omitempty"`

	// sessionAffinity keeps a user on the version they first reached during
	// the analysis, with a cookie (Istio and Gateway API).
	// +optional
	SessionAffinity *SessionAffinity `json:"sessionAffinity,omitempty"`

	// baseline runs a fresh copy of the primary beside the canary during
	// each analysis: the <target>-baseline Deployment, with the primary's
	// pod template (the revision in production) and the canary's replica
	// count, created when the analysis starts and deleted when it ends.
	// While the canary has weight w, the baseline has w too and the
	// primary 100 - 2w, so the canary and the baseline start together,
	// serve the same share and differ only in their version: metrics with
	// compare.against: baseline compare the two. Only for canary releases
	// (stepWeight or stepWeights) of a Deployment on the istio and
	// gatewayapi providers, with a maximum weight of 50 or less; other
	// Canaries are reported invalid. A Sluice extension. Defaults to false.
	// +optional
	Baseline bool `json:"baseline,omitempty"`
}

// HTTPMatchConditions are request conditions for A/B testing; all set
// conditions must hold.
type HTTPMatchConditions struct {
	// headers match request headers by lower-case name.
	// +optional
	Headers map[string]HeaderMatch `json:"headers,omitempty"`

	// queryParams match query parameters by name.
	// +optional
	QueryParams map[string]StringMatch `json:"queryParams,omitempty"`

	// sourceLabels restrict the match to requests from workloads with these
	// labels (Istio).
	// +optional
	SourceLabels map[string]string `json:"sourceLabels,omitempty"`
}

// HeaderMatch matches a header value; exactly one field must be set.
//
// +kubebuilder:validation:XValidation:rule="(has(self.exact) ? 1 : 0) + (has(self.prefix) ? 1 : 0) + (has(self.suffix) ? 1 : 0) + (has(self.regex) ? 1 : 0) == 1",message="set exactly one of exact, prefix, suffix and regex"
type HeaderMatch struct {
	// exact matches the whole value.
	// +optional
	Exact *string `json:"exact,omitempty"`

	// prefix matches the start of the value.
	// +optional
	Prefix *string `json:"prefix,omitempty"`

	// suffix matches the end of the value.
	// +optional
	Suffix *string `json:"suffix,omitempty"`

	// regex matches the value against an RE2 regular expression.
	// +optional
	Regex *string `json:"regex,omitempty"`
}

// CanaryMetric is one check of the analysis: a named query whose value must
// stay inside thresholdRange, or, with compare, must not be clearly worse
// for the canary than for the primary.
//
// +kubebuilder:validation:XValidation:rule="!has(self.compare) || (!has(self.thresholdRange) && !has(self.threshold))",message="a metric with compare is judged against the primary, not thresholds: remove thresholdRange and threshold, or list the metric twice to do both"
type CanaryMetric struct {
	// name identifies the check. Without templateRef it must be a builtin
	// metric of the provider: request-success-rate (percent of non-5xx
	// answers) or request-duration (99th percentile latency in
	// milliseconds).
	// +required
	Name string `json:"name"`

	// interval is the time window the query looks at, as a duration such as
	// 1m; templates read it as {{ interval }}. Defaults to 1m.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)|^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +kubebuilder:default="1m"
	// +optional
	Interval string `json:"interval,omitempty"`

	// threshold is the former way to bound a builtin metric: the lowest
	// success rate or the highest duration. Deprecated: use thresholdRange.
	// +optional
	Threshold float64 `json:"threshold,omitempty"`

	// thresholdRange is the range the value must stay in; a value outside
	// it is a failed check.
	// +optional
	ThresholdRange *CanaryThresholdRange `json:"thresholdRange,omitempty"`

	// query is an inline PromQL query run against the metrics server.
	// Deprecated: use a MetricTemplate with templateRef.
	// +optional
	Query string `json:"query,omitempty"`

	// templateRef names the MetricTemplate that provides the query and the
	// metrics provider.
	// +optional
	TemplateRef *CrossNamespaceObjectReference `json:"templateRef,omitempty"`

	// templateVariables are values the template reads as {{ variables.NAME }}.
	// +optional
	TemplateVariables map[string]string `json:"templateVariables,omitempty"`

	// onNoData says what a step does when the query returns no data (an
	// empty result or NaN), as on a low-traffic service: fail counts a failed
	// check (as Flagger does), skip passes the check, hold neither advances
	// nor counts a failure and tries again at the next step. Defaults to
	// fail. A Sluice extension.
	// +kubebuilder:validation:Enum=fail;skip;hold
	// +optional
	OnNoData NoDataPolicy `json:"onNoData,omitempty"`

	// dryRun evaluates and records the metric without ever failing the
	// analysis, to try a new check safely. Defaults to false. A Sluice
	// extension.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// compare judges the metric by comparing the canary with the primary
	// over the same window with a statistical test, instead of with fixed
	// thresholds. A Sluice extension.
	// +optional
	Compare *CanaryCompare `json:"compare,omitempty"`
}

// NoDataPolicy is what a step does with a metric that returned no data.
type NoDataPolicy string

// The no-data policies.
const (
	// NoDataFail counts a failed check.
	NoDataFail NoDataPolicy = "fail"
	// NoDataSkip passes the check.
	NoDataSkip NoDataPolicy = "skip"
	// NoDataHold keeps the step where it is without counting a failure.
	NoDataHold NoDataPolicy = "hold"
)

// CanaryThresholdRange bounds a metric value; both ends are inclusive.
type CanaryThresholdRange struct {
	// min is the lowest accepted value. Unset means no lower bound.
	// +optional
	Min *float64 `json:"min,omitempty"`

	// max is the highest accepted value. Unset means no upper bound.
	// +optional
	Max *float64 `json:"max,omitempty"`
}

// CrossNamespaceObjectReference names an object that may live in another
// namespace.
type CrossNamespaceObjectReference struct {
	// name of the object.
	// +required
	Name string `json:"name"`

	// namespace of the object. Unset means the Canary's namespace.
	// Controllers started with -no-cross-namespace-refs refuse other
	// namespaces.
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// HookType says at which stage of the analysis a webhook is called.
//
// +kubebuilder:validation:Enum="";confirm-rollout;pre-rollout;rollout;confirm-promotion;post-rollout;event;rollback;confirm-traffic-increase
type HookType string

// The webhook types, with Flagger's names.
const (
	// RolloutHook is called at every analysis step; a failure is a failed
	// check. It is the type of a webhook without one.
	RolloutHook HookType = "rollout"
	// PreRolloutHook is called once before traffic reaches the canary; a
	// failure is a failed check.
	PreRolloutHook HookType = "pre-rollout"
	// PostRolloutHook is called after promotion or rollback.
	PostRolloutHook HookType = "post-rollout"
	// ConfirmRolloutHook gates the start of the analysis: it waits until
	// the hook answers with success.
	ConfirmRolloutHook HookType = "confirm-rollout"
	// ConfirmPromotionHook gates the promotion at the end of the analysis.
	ConfirmPromotionHook HookType = "confirm-promotion"
	// ConfirmTrafficIncreaseHook gates each increase of the canary weight.
	ConfirmTrafficIncreaseHook HookType = "confirm-traffic-increase"
	// RollbackHook rolls the canary back when it answers with success.
	RollbackHook HookType = "rollback"
	// EventHook receives every event of the canary.
	EventHook HookType = "event"
)

// CanaryWebhook is an HTTP call made at one stage of the analysis.
type CanaryWebhook struct {
	// name identifies the webhook in events and the analysis history.
	// +required
	Name string `json:"name"`

	// type is the stage at which the webhook is called. Defaults to rollout.
	// +optional
	Type HookType `json:"type,omitempty"`

	// url is the absolute http or https address that receives a POST with
	// the canary's name, namespace, phase, checksum and metadata. Other
	// values are admitted, as by Flagger, and the calls fail.
	// +required
	URL string `json:"url"`

	// muteAlert stops this webhook's gate from sending alerts while it waits.
	// Defaults to false.
	// +optional
	MuteAlert bool `json:"muteAlert,omitempty"`

	// timeout is how long a call may take, as a duration such as 30s.
	// Defaults to 10s. A value that is not a duration but that Flagger's
	// pattern admits (10sec) fails the call, as in Flagger.
	// +kubebuilder:validation:Pattern=`^[0-9]+(m|s)|^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$`
	// +optional
	Timeout string `json:"timeout,omitempty"`

	// retries is how many times a failed call is repeated before it counts
	// as failed. Defaults to 0; a negative value counts as 0.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +optional
	Retries int32 `json:"retries,omitempty"`

	// disableTLS skips the verification of the server's TLS certificate.
	// Defaults to false.
	// +optional
	DisableTLS bool `json:"disableTLS,omitempty"`

	// metadata is sent to the webhook as-is; the load tester reads the
	// command to run from it (type, cmd, logCmdOutput).
	// +optional
	Metadata map[string]string `json:"metadata,omitempty"`
}

// EffectiveType is the webhook's type, with an empty type read as rollout.
func (w CanaryWebhook) EffectiveType() HookType {
	if w.Type == "" {
		return RolloutHook
	}
	return w.Type
}

// AlertSeverity filters which events an alert provider receives.
//
// +kubebuilder:validation:Enum="";info;warn;error
type AlertSeverity string

// The alert severities, from the most to the least verbose.
const (
	// SeverityInfo sends every event.
	SeverityInfo AlertSeverity = "info"
	// SeverityWarn sends warnings and errors.
	SeverityWarn AlertSeverity = "warn"
	// SeverityError sends errors only.
	SeverityError AlertSeverity = "error"
)

// CanaryAlert sends the canary's events to an AlertProvider.
type CanaryAlert struct {
	// name identifies the alert.
	// +required
	Name string `json:"name"`

	// severity is the least severe event that is sent: info, warn or error.
	// Empty means info.
	// +kubebuilder:default=info
	// +optional
	Severity AlertSeverity `json:"severity,omitempty"`

	// providerRef names the AlertProvider that delivers the alert.
	// +required
	ProviderRef CrossNamespaceObjectReference `json:"providerRef"`
}

// SessionAffinity keeps users on the version they first reached, with cookies.
type SessionAffinity struct {
	// cookieName is the cookie that pins a user to the canary.
	// +required
	CookieName string `json:"cookieName"`

	// primaryCookieName is the cookie that pins a user to the primary once
	// they reached it; it must differ from cookieName. Unset means users are
	// pinned to the canary only.
	// +optional
	PrimaryCookieName string `json:"primaryCookieName,omitempty"`

	// maxAge is the lifetime of the cookies, in seconds. Defaults to 86400
	// (one day).
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +kubebuilder:validation:Minimum=-2147483648
	// +kubebuilder:validation:Maximum=2147483647
	// +kubebuilder:validation:MultipleOf=1
	// +kubebuilder:default=86400
	// +optional
	MaxAge int32 `json:"maxAge,omitempty"`

	// domain is the Domain attribute of the cookies.
	// +optional
	Domain string `json:"domain,omitempty"`

	// httpOnly sets the HttpOnly attribute of the cookies. Defaults to false.
	// +optional
	HTTPOnly bool `json:"httpOnly,omitempty"`

	// partitioned sets the Partitioned attribute of the cookies. Defaults to false.
	// +optional
	Partitioned bool `json:"partitioned,omitempty"`

	// path is the Path attribute of the cookies.
	// +optional
	Path string `json:"path,omitempty"`

	// sameSite is the SameSite attribute of the cookies: Strict, Lax or None.
	// +kubebuilder:validation:Enum=Strict;Lax;None
	// +optional
	SameSite string `json:"sameSite,omitempty"`

	// secure sets the Secure attribute of the cookies. Defaults to false.
	// +optional
	Secure bool `json:"secure,omitempty"`
}
