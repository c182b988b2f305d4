// Package statemachine decides what happens next to a Canary. Decide is a
// pure function from the Canary's spec and status, what the reconciler
// observed in the cluster, and the results of the checks it ran, to the next
// status and the actions the reconciler must take. It does no I/O, so every
// transition is tested by table, without a cluster.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package statemachine

import (
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// Input is everything Decide looks at.
type Input struct {
	// Spec is the Canary's spec.
	Spec flaggerv1beta1.CanarySpec
	// Status is the Canary's persisted status: the state machine's memory.
	Status flaggerv1beta1.CanaryStatus
	// Name and Namespace identify the Canary, for messages.
	Name, Namespace string
	// Generation is the Canary's metadata.generation.
	Generation int64
	// Obs is what the reconciler observed in the cluster.
	Obs Observation
	// Results are the outcomes of the gates and checks Plan asked for; empty
	// when none were due.
	Results Results
	// Request is the request pending in the Canary's annotations, if any.
	Request *Request
	// Config holds the controller-wide settings.
	Config Config
	// Now is the time of the decision.
	Now time.Time
}

// Config holds the controller-wide settings that shape decisions.
type Config struct {
	// MinInterval is the shortest time between two analysis steps; shorter
	// analysis intervals are raised to it. Sluice runs with 10s.
	MinInterval time.Duration
	// SplitsTraffic is false for routers that can only switch all traffic
	// between primary and canary (provider kubernetes): every strategy then
	// runs as blue/green.
	SplitsTraffic bool
}

// Observation is what the reconciler saw in the cluster, read only.
type Observation struct {
	// Invalid, when set, says why Sluice cannot act on the Canary.
	Invalid *problem.Problem
	// Routable is true when the reconciler can set the traffic split and
	// scale the target even though the Canary is invalid: a router and
	// the workload's selector are known. An analysis that becomes invalid
	// is then rolled back instead of left where it stopped.
	Routable bool
	// Deleting is true when the Canary is being deleted and Sluice holds
	// its finalizer (revertOnDeletion).
	Deleting bool
	// Revision is the hash of the target's pod template and tracked configs.
	Revision string
	// TrackedConfigs are the checksums of the tracked ConfigMaps and Secrets.
	TrackedConfigs map[string]string
	// Target is the workload the Canary points at (the canary).
	Target Workload
	// Primary is the <target>-primary workload.
	Primary Workload
	// Baseline is the <target>-baseline workload (analysis.baseline), when
	// the Canary controls one; its Revision is the analysed revision it
	// was started for.
	Baseline Workload
	// Routes is the split the router's objects hold now, or nil when they
	// could not be read (not created yet, or the router cannot tell).
	Routes *Routes
	// AutoscalerDesired is the replica count the target's autoscaler wants,
	// or 0.
	AutoscalerDesired int32
	// OwnServices is true when the target brings the Services the routers
	// send traffic to (a Kubernetes or Knative Service target): no apex,
	// primary and canary Services are generated or released for it.
	OwnServices bool
	// Admitted is false when the controller's cap on concurrent analyses is
	// reached and this Canary must wait for a slot before it starts one.
	Admitted bool
	// AdmissionMessage says why the Canary was not admitted.
	AdmissionMessage string
}

// Workload is the observed state of one workload.
type Workload struct {
	// Exists is false when the workload is not there.
	Exists bool
	// Replicas is the desired replica count.
	Replicas int32
	// Ready is true when the rollout finished and enough replicas are available.
	Ready bool
	// Stalled is true when the workload's controller gave up on the rollout.
	Stalled bool
	// Message says why the workload is not ready.
	Message string
	// Revision is, for the primary, the target revision last copied into
	// it, or empty when unknown (a primary Sluice has not written yet).
	Revision string
}

// Results are the outcomes of the gates and checks the reconciler ran
// because Plan said they were due.
type Results struct {
	// Gates holds, per gate webhook type, whether the gate is open. For the
	// rollback type, open means a rollback was asked for.
	Gates map[flaggerv1beta1.HookType]Gate
	// Checks are the pre-rollout webhooks, or the rollout webhooks and the
	// metrics, of one analysis step. It is nil when no step's checks ran
	// and non-nil (possibly empty, for an analysis without checks) when
	// they did: Decide takes a step only on checks that were made.
	Checks []flaggerv1beta1.CanaryCheckResult
}

// Gate is the answer of the gate webhooks of one type.
type Gate struct {
	// Open is true when every webhook of the type answered with success.
	Open bool
	// Message names the webhook that kept the gate closed, and why.
	Message string
}

// ActionKind is something the reconciler does to the cluster.
type ActionKind string

// The actions, in the order the reconciler applies them.
const (
	// EnsurePrimary creates the primary workload, its configs and
	// autoscaler when missing.
	EnsurePrimary ActionKind = "EnsurePrimary"
	// EnsureServices creates or updates the apex, primary and canary Services.
	EnsureServices ActionKind = "EnsureServices"
	// ReconcileRoutes creates or updates the router's objects.
	ReconcileRoutes ActionKind = "ReconcileRoutes"
	// ScaleTargetUp scales the target (canary) workload up.
	ScaleTargetUp ActionKind = "ScaleTargetUp"
	// RestoreTarget scales the target back to the primary's replica count
	// before a Canary with revertOnDeletion goes away.
	RestoreTarget ActionKind = "RestoreTarget"
	// ScalePrimaryAtLeast raises the primary to Action.Replicas replicas.
	ScalePrimaryAtLeast ActionKind = "ScalePrimaryAtLeast"
	// Promote copies the target's pod template and configs into the primary.
	Promote ActionKind = "Promote"
	// SetRoutes sets the traffic split to Action.Routes.
	SetRoutes ActionKind = "SetRoutes"
	// ScaleTargetToZero parks the target workload.
	ScaleTargetToZero ActionKind = "ScaleTargetToZero"
	// SyncAutoscaler gives the primary's autoscaler the target's spec
	// again once the primary carries the traffic.
	SyncAutoscaler ActionKind = "SyncAutoscaler"
	// FinalizeRoutes points the routing back at the target before the
	// Canary goes away.
	FinalizeRoutes ActionKind = "FinalizeRoutes"
	// RemoveFinalizer lets the deletion of the Canary complete.
	RemoveFinalizer ActionKind = "RemoveFinalizer"
	// RunPostRollout calls the post-rollout webhooks.
	RunPostRollout ActionKind = "RunPostRollout"
	// ReleaseServices points the apex Service at the target's pods and
	// removes the Canary's owner reference from it, so that the app keeps
	// its Service after the Canary and what it owns are deleted.
	ReleaseServices ActionKind = "ReleaseServices"
	// EnsureBaseline creates or updates the baseline, a copy of the
	// primary beside the canary, and its Service, for the analysis of
	// Action.Revision.
	EnsureBaseline ActionKind = "EnsureBaseline"
	// RemoveBaseline deletes the baseline and its Service.
	RemoveBaseline ActionKind = "RemoveBaseline"
)

// Action is one step the reconciler takes.
type Action struct {
	// Kind is what to do.
	Kind ActionKind
	// Routes is the traffic split for SetRoutes.
	Routes Routes
	// Replicas is the replica count for ScalePrimaryAtLeast.
	Replicas int32
	// Revision is, for Promote, the analysed revision: the promotion copies
	// the target only while the target still holds it. For EnsureBaseline
	// it is the analysed revision the baseline runs beside.
	Revision string
}

// Routes is a traffic split.
type Routes struct {
	// Primary is the primary's share, in percent.
	Primary int
	// Canary is the canary's share, in percent.
	Canary int
	// Baseline is the baseline's share, in percent.
	Baseline int
	// Mirrored is true when the primary's traffic is copied to the canary.
	Mirrored bool
}

// EventType is Normal or Warning, as Kubernetes events.
type EventType string

// The event types.
const (
	// Normal events report progress.
	Normal EventType = "Normal"
	// Warning events report failures and problems a person should look at.
	Warning EventType = "Warning"
)

// Event is something to tell people: a Kubernetes event, a log line, the
// event webhooks and, for the milestones Flagger alerts on, an alert.
type Event struct {
	// Type is Normal or Warning.
	Type EventType
	// Message says what happened, in a sentence.
	Message string
	// Alert, when set, also goes to the Canary's alert providers.
	Alert *Alert
}

// Alert is the message sent to the alert providers for a milestone of a
// release, with Flagger's text and severity.
type Alert struct {
	// Severity is info, warn or error; each AlertProvider reference
	// filters on it.
	Severity flaggerv1beta1.AlertSeverity
	// Text is the alert's message.
	Text string
	// Metadata adds the Canary's target, threshold, deadline and traffic
	// routing to the alert, as Flagger does for the start of a release.
	Metadata bool
}

// Decision is what Decide returns.
type Decision struct {
	// Status is the next status to persist.
	Status flaggerv1beta1.CanaryStatus
	// Actions are applied in order; each is idempotent.
	Actions []Action
	// Events are emitted after the status is persisted.
	Events []Event
	// RequeueAfter is when the Canary needs to be looked at again without
	// any change in the cluster; zero means only on change.
	RequeueAfter time.Duration
	// ClearRequest asks the reconciler to remove the request annotations
	// once the status, which records the request's outcome, is persisted.
	ClearRequest bool
}
