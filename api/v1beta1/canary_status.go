package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CanaryPhase is the stage a Canary is in.
//
// +kubebuilder:validation:Enum="";Initializing;Initialized;Waiting;Progressing;WaitingPromotion;Promoting;Finalising;Succeeded;Failed;Terminating;Terminated
type CanaryPhase string

// The phases of a Canary, with Flagger's names.
const (
	// CanaryPhaseInitializing: the primary workload and Services are being created.
	CanaryPhaseInitializing CanaryPhase = "Initializing"
	// CanaryPhaseInitialized: the primary serves all traffic and Sluice
	// waits for a new revision of the target.
	CanaryPhaseInitialized CanaryPhase = "Initialized"
	// CanaryPhaseWaiting: a new revision waits for a confirm-rollout gate.
	CanaryPhaseWaiting CanaryPhase = "Waiting"
	// CanaryPhaseProgressing: the analysis of a new revision is running.
	CanaryPhaseProgressing CanaryPhase = "Progressing"
	// CanaryPhaseWaitingPromotion: the analysis passed and waits for a
	// confirm-promotion gate.
	CanaryPhaseWaitingPromotion CanaryPhase = "WaitingPromotion"
	// CanaryPhasePromoting: the canary's spec is being copied to the primary.
	CanaryPhasePromoting CanaryPhase = "Promoting"
	// CanaryPhaseFinalising: traffic is routed back to the primary and the
	// canary scaled down.
	CanaryPhaseFinalising CanaryPhase = "Finalising"
	// CanaryPhaseSucceeded: the last revision was promoted.
	CanaryPhaseSucceeded CanaryPhase = "Succeeded"
	// CanaryPhaseFailed: the last revision was rolled back.
	CanaryPhaseFailed CanaryPhase = "Failed"
	// CanaryPhaseTerminating: the Canary is being deleted and the target restored.
	CanaryPhaseTerminating CanaryPhase = "Terminating"
	// CanaryPhaseTerminated: the target was restored; the Canary is about to go away.
	CanaryPhaseTerminated CanaryPhase = "Terminated"
)

// CanaryStatus is what Sluice observed and decided last. It is the
// controller's only memory: a restarted controller resumes from it.
type CanaryStatus struct {
	// phase is the stage the Canary is in.
	// +optional
	Phase CanaryPhase `json:"phase,omitempty"`

	// failedChecks counts the failed checks of the current analysis; the
	// revision is rolled back when it reaches analysis.threshold.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +optional
	FailedChecks int32 `json:"failedChecks"`

	// canaryWeight is the percentage of traffic routed to the canary.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +optional
	CanaryWeight int32 `json:"canaryWeight"`

	// iterations counts the analysis steps completed in the current run.
	// +kubebuilder:validation:Type=number
	// +kubebuilder:validation:Format=""
	// +optional
	Iterations int32 `json:"iterations"`

	// trackedConfigs maps each ConfigMap and Secret the target uses
	// ("configmap/<name>", "secret/<name>") to a checksum of its data.
	// +optional
	TrackedConfigs map[string]string `json:"trackedConfigs,omitempty"`

	// lastAppliedSpec is the revision hash of the target seen last.
	// +optional
	LastAppliedSpec string `json:"lastAppliedSpec,omitempty"`

	// lastPromotedSpec is the revision hash of what the primary runs.
	// +optional
	LastPromotedSpec string `json:"lastPromotedSpec,omitempty"`

	// lastTransitionTime is when the phase last changed.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitzero"`

	// sessionAffinityCookie is the cookie value that pins users to the
	// canary in the current analysis.
	// +optional
	SessionAffinityCookie string `json:"sessionAffinityCookie,omitempty"`

	// primarySessionAffinityCookie is the cookie value that pins users to the primary.
	// +optional
	PrimarySessionAffinityCookie string `json:"primarySessionAffinityCookie,omitempty"`

	// previousSessionAffinityCookie is the canary cookie value of the
	// previous analysis, expired on the next one.
	// +optional
	PreviousSessionAffinityCookie string `json:"previousSessionAffinityCookie,omitempty"`

	// observedGeneration is the generation of the spec Sluice acted on last.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// lastAnalysisTime is when the last analysis step ran; the next one is
	// due an analysis interval later. Sluice resumes from it after a restart.
	// +optional
	LastAnalysisTime *metav1.Time `json:"lastAnalysisTime,omitempty"`

	// waitingSince is when the current wait began: for workloads to become
	// ready, or for a gate to open. Deadlines are counted from it. Unset
	// when nothing is awaited.
	// +optional
	WaitingSince *metav1.Time `json:"waitingSince,omitempty"`

	// stepStartedAt is when the webhooks of the analysis step in flight
	// were called. Sluice writes it before it calls them and clears it with
	// the step's outcome, so that a step interrupted by a restart or a
	// conflicting write is recorded as such and its webhooks are never
	// called twice. Unset between steps.
	// +optional
	StepStartedAt *metav1.Time `json:"stepStartedAt,omitempty"`

	// lastRequest is the last request made through the Canary's
	// sluice.dev/request annotations (kubectl sluice promote, abort,
	// retry) and what became of it. Sluice honours each request id once.
	// +optional
	LastRequest *CanaryRequestStatus `json:"lastRequest,omitempty"`

	// analysis holds the results of the most recent checks (metrics and
	// webhooks), newest last, at most 20, so that a person can see why a
	// canary advanced, waited or failed.
	// +kubebuilder:validation:MaxItems=20
	// +optional
	Analysis []CanaryCheckResult `json:"analysis,omitempty"`

	// conditions hold the Promoted condition, as Flagger writes it: True
	// once initialized or promoted, False after a rollback, Unknown while
	// an analysis runs.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []CanaryCondition `json:"conditions,omitempty"`
}

// RequestOutcome says what Sluice did with a request.
//
// +kubebuilder:validation:Enum=Honoured;Refused
type RequestOutcome string

// The outcomes of a request.
const (
	// RequestHonoured: Sluice carries the request out.
	RequestHonoured RequestOutcome = "Honoured"
	// RequestRefused: the request made no sense in the Canary's state.
	RequestRefused RequestOutcome = "Refused"
)

// CanaryRequestStatus records a request made through the sluice.dev/request
// annotations.
type CanaryRequestStatus struct {
	// id is the request's sluice.dev/request-id.
	// +required
	ID string `json:"id"`
	// request is promote, promote-full, abort or retry.
	// +required
	Request string `json:"request"`
	// by is who asked (sluice.dev/request-by).
	// +optional
	By string `json:"by,omitempty"`
	// reason is why they asked (sluice.dev/request-reason).
	// +optional
	Reason string `json:"reason,omitempty"`
	// outcome is Honoured or Refused.
	// +required
	Outcome RequestOutcome `json:"outcome"`
	// message says what Sluice did, or why it refused.
	// +optional
	Message string `json:"message,omitempty"`
	// revision is the revision under analysis when the request was
	// honoured; a promotion request applies to it only.
	// +optional
	Revision string `json:"revision,omitempty"`
	// time is when Sluice took the request.
	// +required
	Time metav1.Time `json:"time"`
}

// CheckKind says what a check result comes from.
//
// +kubebuilder:validation:Enum=metric;webhook
type CheckKind string

// The kinds of checks.
const (
	// CheckMetric is a metric compared with its thresholdRange.
	CheckMetric CheckKind = "metric"
	// CheckWebhook is a webhook call.
	CheckWebhook CheckKind = "webhook"
)

// CanaryCheckResult is the outcome of one check of an analysis step.
type CanaryCheckResult struct {
	// time is when the check ran.
	// +required
	Time metav1.Time `json:"time"`

	// kind is metric or webhook.
	// +required
	Kind CheckKind `json:"kind"`

	// name is the metric's or webhook's name in the spec.
	// +required
	Name string `json:"name"`

	// passed is true when the check succeeded.
	// +required
	Passed bool `json:"passed"`

	// value is the metric's value, when the query returned one.
	// +optional
	Value *float64 `json:"value,omitempty"`

	// min is the lowest accepted value, when the metric has one.
	// +optional
	Min *float64 `json:"min,omitempty"`

	// max is the highest accepted value, when the metric has one.
	// +optional
	Max *float64 `json:"max,omitempty"`

	// canaryWeight is the canary's traffic share, in percent, when the check ran.
	// +optional
	CanaryWeight int32 `json:"canaryWeight,omitempty"`

	// message explains a failure: the error, or the value and the range it missed.
	// +optional
	Message string `json:"message,omitempty"`

	// query is the metric's query as it was sent to the provider, after
	// templating.
	// +optional
	Query string `json:"query,omitempty"`

	// noData is true when the query returned no data (an empty result or NaN).
	// +optional
	NoData bool `json:"noData,omitempty"`

	// held is true when the metric had no data and its onNoData is hold:
	// the step waits without counting a failure.
	// +optional
	Held bool `json:"held,omitempty"`

	// dryRun is true when the metric is in dry-run mode: a failure is
	// recorded but does not count.
	// +optional
	DryRun bool `json:"dryRun,omitempty"`

	// comparison holds the verdict and statistics of a metric with
	// compare: both samples, the estimated difference and its interval,
	// the p-value and the effect size.
	// +optional
	Comparison *CanaryComparison `json:"comparison,omitempty"`

	// critical is true when a critical comparison failed: the analysis
	// rolls back at once instead of counting a failed check.
	// +optional
	Critical bool `json:"critical,omitempty"`
}

// Counts reports whether the result fails the step: a failed check that is
// neither a dry run nor held.
func (r CanaryCheckResult) Counts() bool { return !r.Passed && !r.DryRun && !r.Held }

// CanaryConditionType is the type of a Canary condition.
type CanaryConditionType string

// The condition types of a Canary.
const (
	// PromotedType says whether the last revision was promoted, with the
	// phase as reason, as Flagger writes it. `kubectl wait
	// --for=condition=promoted` waits on it.
	PromotedType CanaryConditionType = "Promoted"
	// ValidType says whether Sluice can act on the Canary; when False, the
	// reason and message say what to fix (a missing target, an unsupported
	// kind, a reference that is not allowed).
	ValidType CanaryConditionType = "Valid"
)

// CanaryCondition is one condition of a Canary, in Flagger's shape.
type CanaryCondition struct {
	// type of the condition, such as Promoted.
	// +required
	Type CanaryConditionType `json:"type"`

	// status of the condition: True, False or Unknown.
	// +required
	Status corev1.ConditionStatus `json:"status"`

	// lastUpdateTime is when the condition was last written.
	// +optional
	LastUpdateTime metav1.Time `json:"lastUpdateTime,omitzero"`

	// lastTransitionTime is when the status last changed.
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitzero"`

	// reason is a one-word reason for the status, the phase name for Promoted.
	// +required
	Reason string `json:"reason"`

	// message says in a sentence what happened and what to do about it.
	// +optional
	Message string `json:"message,omitempty"`
}
