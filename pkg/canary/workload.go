package canary

import (
	"context"
	"errors"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/problem"
)

// Workload operates one kind of target: a Deployment or DaemonSet, which
// is copied to <target>-primary; a Kubernetes Service, copied to
// <target>-primary and <target>-canary; a Knative Service, whose revisions
// are the primary and the canary. Every method is idempotent: calling it
// again after a crash or a conflict is safe. Methods never change an
// object the Canary does not own, except the replica count of the target
// (and, for a DaemonSet, the node selector that parks it), the pause
// annotation of its KEDA ScaledObject, the primary-revision annotation of
// a Knative Service and, on revert, the same fields back.
type Workload interface {
	// Observe reads the target, the primary and the tracked configs and
	// reports them; it writes nothing. Bad input (target missing, of the
	// wrong kind, without a selector label, a missing autoscaler or a
	// missing non-optional ConfigMap/Secret) is returned as *problem.Problem.
	Observe(ctx context.Context, cd *flaggerv1beta1.Canary) (*State, error)

	// EnsurePrimary creates <target>-primary as a copy of the target, with
	// its tracked ConfigMaps/Secrets and autoscaler copied to
	// <name>-primary, when they do not exist. It does not change an
	// existing primary's pod template (Promote does).
	EnsurePrimary(ctx context.Context, cd *flaggerv1beta1.Canary) error

	// Promote copies the target's pod template and tracked configs into the
	// primary (and the autoscaler's spec into the primary autoscaler), which
	// starts the primary's rolling update. It copies only the analysed
	// revision: when the target holds another one, nothing is written and
	// an error wrapping ErrRevisionChanged is returned.
	Promote(ctx context.Context, cd *flaggerv1beta1.Canary, revision string) error

	// ScaleTargetToZero parks the target: replicas 0 for a Deployment, a
	// node selector no node matches for a DaemonSet.
	ScaleTargetToZero(ctx context.Context, cd *flaggerv1beta1.Canary) error

	// ScaleTargetUp brings the target back for an analysis: to its own
	// replica count when above zero; else, without an autoscaler, the
	// primary's; with one, the autoscaler's minimum; else 1.
	ScaleTargetUp(ctx context.Context, cd *flaggerv1beta1.Canary) error

	// RestoreTarget brings the target back to carry the primary's load
	// when the Canary is deleted with revertOnDeletion: at least the
	// primary's replica count.
	RestoreTarget(ctx context.Context, cd *flaggerv1beta1.Canary) error

	// ScalePrimaryAtLeast raises the primary's replica count (and its
	// autoscaler's minimum) to at least replicas, so that it can take the
	// canary's load at promotion. It never lowers either.
	ScalePrimaryAtLeast(ctx context.Context, cd *flaggerv1beta1.Canary, replicas int32) error

	// SyncAutoscaler copies the target autoscaler's spec to the primary's
	// again, undoing the raise of ScalePrimaryAtLeast once the primary
	// carries the traffic and its autoscaler sees the load. Without an
	// autoscaler it does nothing.
	SyncAutoscaler(ctx context.Context, cd *flaggerv1beta1.Canary) error

	// EnsureBaseline creates or updates <target>-baseline
	// (analysis.baseline): a copy of the primary's pod template, whose
	// pods carry the selector label value <value>-baseline, with the
	// replica count the canary has (or gets from ScaleTargetUp). The
	// analysed revision is recorded in its pod template
	// (BaselineRevisionAnnotation), so that a new revision's analysis
	// starts fresh baseline pods with the new canary. A workload of the
	// name that the Canary does not control is a problem.NotOwned; a kind
	// without baselines returns a problem.UnsupportedTarget.
	EnsureBaseline(ctx context.Context, cd *flaggerv1beta1.Canary, revision string) error

	// RemoveBaseline deletes <target>-baseline when the Canary controls
	// it; otherwise it does nothing.
	RemoveBaseline(ctx context.Context, cd *flaggerv1beta1.Canary) error
}

// ErrRevisionChanged is returned by Promote when the target no longer holds
// the revision to promote: a newer one landed after the analysis.
var ErrRevisionChanged = errors.New("the target holds a revision other than the analysed one")

// State is what Observe saw.
type State struct {
	// Target is the workload the Canary points at.
	Target WorkloadState
	// Primary is <target>-primary; Exists is false before bootstrap.
	Primary WorkloadState
	// Revision is a stable hash of the target's pod template and the data
	// of its tracked ConfigMaps and Secrets. It ignores what Sluice itself
	// changes on the target (replicas, the DaemonSet parking selector).
	Revision string
	// TrackedConfigs maps "configmap/<name>" and "secret/<name>" of every
	// tracked config to a checksum of its data (the first 16 hex digits of
	// a SHA-256). It is nil when nothing is tracked.
	TrackedConfigs map[string]string
	// SelectorLabel is the first of the -selector-labels found in the
	// target's selector, and SelectorValue its value. The primary's pods
	// carry SelectorValue + "-primary".
	SelectorLabel string
	// SelectorValue is the value of SelectorLabel on the target's pods.
	SelectorValue string
	// Containers are the containers of the target's pod template (not the
	// init containers), for service port discovery.
	Containers []corev1.Container
	// AutoscalerDesired is the replica count the target's autoscaler wants,
	// or 0 when there is no autoscaler or it has not decided yet.
	AutoscalerDesired int32
	// OwnServices is true for targets that bring the Services the routers
	// send traffic to (a Kubernetes Service, whose copies the Workload
	// keeps; a Knative Service, whose Services Knative keeps): Sluice then
	// generates no apex, primary and canary Services for them.
	OwnServices bool
	// Baseline is <target>-baseline, when the Canary controls one; its
	// Revision is the analysed revision it was started for.
	Baseline WorkloadState
}

// WorkloadState is the observed state of one workload.
type WorkloadState struct {
	// Exists is false when the workload is not there.
	Exists bool
	// Replicas is the desired replica count (spec), or the desired number
	// of scheduled pods for a DaemonSet.
	Replicas int32
	// AvailableReplicas counts the available pods of the current revision.
	AvailableReplicas int32
	// Ready is true when the rollout finished and at least the ready
	// threshold percentage of the replicas is available.
	Ready bool
	// Stalled is true when the workload's own controller reports that the
	// rollout cannot progress (Deployment ProgressDeadlineExceeded).
	Stalled bool
	// Message says why the workload is not ready, for status and events.
	Message string
	// Revision is, for the target, State.Revision. For the primary it is
	// the target revision last copied into it by EnsurePrimary or Promote
	// (the RevisionAnnotation), or empty for a primary that Sluice has not
	// written yet (one created by Flagger, or not there).
	Revision string
}

// Config holds the controller-wide settings of workload operations.
type Config struct {
	// SelectorLabels are the candidate selector labels, in order of
	// preference (-selector-labels).
	SelectorLabels []string
	// IncludeLabelPrefix lists the label and annotation prefixes copied from
	// the target to the primary; "*" copies all (-include-label-prefix).
	IncludeLabelPrefix []string
	// ConfigTracking enables ConfigMap and Secret tracking
	// (-enable-config-tracking).
	ConfigTracking bool
}

// Deps are what workload operations need.
type Deps struct {
	// Client reads workloads from the cache and writes.
	Client client.Client
	// Reader reads ConfigMaps and Secrets directly from the API server, so
	// that they need not be cached cluster-wide.
	Reader client.Reader
	// Config holds the controller-wide settings.
	Config Config
	// Configs, when set, keeps the ConfigMaps read, so that one is read
	// again only when its resourceVersion in Client's (metadata) cache
	// changed.
	Configs *ConfigCache
}

// targetKind is the apiVersion and kind of a target.
type targetKind struct{ apiVersion, kind string }

// kinds maps a target kind to its implementation. Adding a kind is one
// file and one line here.
var kinds = map[targetKind]func(Deps) Workload{
	{"apps/v1", "Deployment"}:                            newDeployment,
	{"apps/v1", "DaemonSet"}:                             newDaemonSet,
	{"v1", "Service"}:                                    newService,
	{flaggerv1beta1.KnativeServiceAPIVersion, "Service"}: newKnativeService,
}

// New returns the Workload for the Canary's target kind, or an
// *problem.Problem for a kind Sluice cannot operate.
func New(cd *flaggerv1beta1.Canary, deps Deps) (Workload, error) {
	ref := cd.Spec.TargetRef
	newKind, ok := kinds[targetKind{ref.APIVersion, ref.Kind}]
	if !ok {
		return nil, problem.New(problem.UnsupportedTarget,
			"targetRef %s %s is not supported: Sluice manages apps/v1 Deployment and DaemonSet, v1 Service and %s Service (Knative) targets",
			ref.APIVersion, ref.Kind, flaggerv1beta1.KnativeServiceAPIVersion)
	}
	return newKind(deps), nil
}

// PrimaryName returns the name of the primary copy of a target or config.
func PrimaryName(name string) string { return name + "-primary" }
