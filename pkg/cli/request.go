package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The annotations of a request to the controller (see docs/cli.md). The
// CLI writes all four in one merge patch; the controller honours the
// request once and removes them.
const (
	annotationRequest       = flaggerv1beta1.RequestAnnotation
	annotationRequestID     = flaggerv1beta1.RequestIDAnnotation
	annotationRequestReason = flaggerv1beta1.RequestReasonAnnotation
	annotationRequestBy     = flaggerv1beta1.RequestByAnnotation
)

// request is one kind of request: promote, abort or retry.
type request struct {
	verb    string
	short   string
	long    string
	example string
	// allowed are the phases in which the request makes sense.
	allowed []flaggerv1beta1.CanaryPhase
	// refusal says why the request makes no sense in a phase.
	refusal func(phase flaggerv1beta1.CanaryPhase) string
}

var requestPromote = request{
	verb:  "promote",
	short: "Skip the remaining analysis steps and promote the canary (--full also skips the confirm-promotion gate)",
	long: `promote asks the controller to skip the remaining steps of the running analysis and promote the
canary. The promotion still waits for the confirm-promotion webhooks unless --full is given.`,
	example: `  kubectl sluice promote podinfo -n test --reason "verified by hand"
  kubectl sluice promote podinfo -n test --full`,
	allowed: []flaggerv1beta1.CanaryPhase{flaggerv1beta1.CanaryPhaseWaiting, flaggerv1beta1.CanaryPhaseProgressing,
		flaggerv1beta1.CanaryPhaseWaitingPromotion},
	refusal: func(p flaggerv1beta1.CanaryPhase) string {
		switch p {
		case flaggerv1beta1.CanaryPhaseSucceeded:
			return "its last revision is already promoted"
		case flaggerv1beta1.CanaryPhaseInitialized:
			return "there is no new revision to promote"
		case flaggerv1beta1.CanaryPhaseFailed:
			return "its revision was rolled back; analyse it again with kubectl sluice retry"
		case flaggerv1beta1.CanaryPhasePromoting, flaggerv1beta1.CanaryPhaseFinalising:
			return "it is already being promoted"
		}
		return "only a revision under analysis can be promoted"
	},
}

var requestAbort = request{
	verb:    "abort",
	short:   "Roll the canary back now: all traffic to the primary, the canary scaled to zero",
	long:    `abort asks the controller to stop the running analysis and roll the new revision back now.`,
	example: `  kubectl sluice abort podinfo -n test --reason "errors in the checkout flow"`,
	allowed: []flaggerv1beta1.CanaryPhase{flaggerv1beta1.CanaryPhaseProgressing, flaggerv1beta1.CanaryPhaseWaitingPromotion},
	refusal: func(p flaggerv1beta1.CanaryPhase) string {
		switch p {
		case flaggerv1beta1.CanaryPhasePromoting, flaggerv1beta1.CanaryPhaseFinalising:
			return "it is being promoted and can no longer be rolled back"
		case flaggerv1beta1.CanaryPhaseFailed:
			return "it is already rolled back"
		}
		return "only a running analysis can be aborted"
	},
}

var requestRetry = request{
	verb:    "retry",
	short:   "Analyse a Failed revision again",
	long:    `retry asks the controller to start the analysis of the revision that failed again, without a new revision.`,
	example: `  kubectl sluice retry podinfo -n test --reason "the database was down"`,
	allowed: []flaggerv1beta1.CanaryPhase{flaggerv1beta1.CanaryPhaseFailed},
	refusal: func(flaggerv1beta1.CanaryPhase) string {
		return "only a Failed revision can be retried"
	},
}

// requestCommand is `promote`, `abort` or `retry`.
func (a *app) requestCommand(r request) *cobra.Command {
	var (
		full     bool
		reason   string
		waitFlag bool
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:     r.verb + " NAME",
		Short:   r.short,
		Long:    r.long + "\n\nThe request is written as annotations on the Canary (see docs/cli.md); by default the command waits until the controller has taken it.",
		Example: r.example,
		Args:    nameArg(r.verb + " NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			value := r.verb
			if full {
				value = "promote-full"
			}
			return a.sendRequest(cmd.Context(), r, value, args[0], reason, waitFlag, timeout)
		},
	}
	if r.verb == requestPromote.verb {
		cmd.Flags().BoolVar(&full, "full", false, "Also skip the confirm-promotion gate.")
	}
	cmd.Flags().StringVar(&reason, "reason", "", "Why, for the record: the controller puts it in the Canary's event.")
	cmd.Flags().BoolVar(&waitFlag, "wait", true, "Wait until the controller has taken the request, then print the phase and the events it caused.")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "How long --wait waits for the controller.")
	return cmd
}

// sendRequest checks that the request makes sense in the Canary's phase,
// writes it in one merge patch conditioned on the resourceVersion that was
// checked, and waits for the controller when asked to.
func (a *app) sendRequest(ctx context.Context, r request, value, name, reason string, waitFlag bool, timeout time.Duration) error {
	cd, cs, err := a.getCanary(ctx, name)
	if err != nil {
		return err
	}
	by := cs.whoAmI(ctx)
	id, err := requestID(a.now())
	if err != nil {
		return err
	}
	if cd, err = writeRequest(ctx, cs, cd, r, value, id, reason, by); err != nil {
		return err
	}
	sent := a.now()
	fmt.Fprintf(a.out(), "%s requested for canary %s/%s (id %s, by %s)\n", value, cd.Namespace, cd.Name, id, by)
	if !waitFlag {
		return nil
	}
	done, err := waitTaken(ctx, cs, cd, id, timeout)
	if err != nil {
		return fmt.Errorf("%w; the request stays on the Canary until the controller takes it: is Sluice running and watching namespace %s? (kubectl sluice explain %s -n %s)",
			err, cd.Namespace, cd.Name, cd.Namespace)
	}
	if err := a.printOutcome(ctx, cs, done, sent); err != nil {
		return err
	}
	if lr := done.Status.LastRequest; lr != nil && lr.ID == id && lr.Outcome == flaggerv1beta1.RequestRefused {
		return fmt.Errorf("the controller refused %s: %s", value, lr.Message)
	}
	return nil
}

// writeRequest writes the request's annotations in one merge patch that
// carries the resourceVersion of the copy whose phase was checked. When the
// Canary changed in between, the API server refuses the patch; it is read
// and checked again.
func writeRequest(ctx context.Context, cs *clients, cd *flaggerv1beta1.Canary, r request, value, id, reason, by string) (*flaggerv1beta1.Canary, error) {
	key := client.ObjectKeyFromObject(cd)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if cd == nil {
			cd = &flaggerv1beta1.Canary{}
			if err := cs.client.Get(ctx, key, cd); err != nil {
				return canaryError(err, key.Name, key.Namespace)
			}
		}
		if err := refuse(r, cd); err != nil {
			return err
		}
		orig := cd.DeepCopy()
		if cd.Annotations == nil {
			cd.Annotations = map[string]string{}
		}
		cd.Annotations[annotationRequest] = value
		cd.Annotations[annotationRequestID] = id
		cd.Annotations[annotationRequestReason] = reason
		cd.Annotations[annotationRequestBy] = by
		err := cs.client.Patch(ctx, cd, client.MergeFromWithOptions(orig, client.MergeFromWithOptimisticLock{}))
		if apierrors.IsConflict(err) {
			cd = nil // changed since it was read: read and check again
		}
		return err
	})
	if err != nil {
		return nil, canaryError(err, key.Name, key.Namespace)
	}
	return cd, nil
}

// refuse says, in one line, why a request makes no sense for the Canary as
// it is, or returns nil.
func refuse(r request, cd *flaggerv1beta1.Canary) error {
	who := cd.Namespace + "/" + cd.Name
	phase := cd.Status.Phase
	switch {
	case cd.Annotations[annotationRequest] != "":
		return fmt.Errorf("cannot %s canary %s: a %s request (id %s) by %s is still waiting for the controller",
			r.verb, who, cd.Annotations[annotationRequest], cd.Annotations[annotationRequestID], orUnknown(cd.Annotations[annotationRequestBy]))
	case cd.Spec.Suspend:
		return fmt.Errorf("cannot %s canary %s: it is paused (spec.suspend) and the controller does not act on it; resume it first: kubectl sluice resume %s -n %s",
			r.verb, who, cd.Name, cd.Namespace)
	case phase == "":
		return fmt.Errorf("cannot %s canary %s: Sluice has not picked it up yet", r.verb, who)
	}
	if c := condition(cd, flaggerv1beta1.ValidType); c != nil && c.Status == "False" {
		return fmt.Errorf("cannot %s canary %s: Sluice cannot act on it (%s): %s", r.verb, who, c.Reason, c.Message)
	}
	if !slices.Contains(r.allowed, phase) {
		return fmt.Errorf("cannot %s canary %s: it is %s: %s", r.verb, who, phase, r.refusal(phase))
	}
	return nil
}

// requestID is the UTC time with nanoseconds and six random hex digits.
func requestID(now time.Time) (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("making a request id: %w", err)
	}
	return now.UTC().Format(time.RFC3339Nano) + "-" + hex.EncodeToString(b), nil
}

// waitTaken watches the Canary until the request with id is gone from its
// annotations, and returns the Canary as it is then.
func waitTaken(parent context.Context, cs *clients, cd *flaggerv1beta1.Canary, id string, timeout time.Duration) (*flaggerv1beta1.Canary, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	sel := fields.OneTermEqualSelector("metadata.name", cd.Name).String()
	watcher := watchFunc(func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
		opts.FieldSelector = sel
		return cs.client.Watch(ctx, &flaggerv1beta1.CanaryList{}, &client.ListOptions{Namespace: cd.Namespace, Raw: &opts})
	})
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, cd.ResourceVersion, watcher)
	if err != nil {
		return nil, fmt.Errorf("watching canary %s/%s: %w", cd.Namespace, cd.Name, err)
	}
	defer rw.Stop()
	var taken *flaggerv1beta1.Canary
	_, err = watchtools.UntilWithoutRetry(ctx, rw, func(ev watch.Event) (bool, error) {
		switch ev.Type {
		case watch.Error:
			return false, fmt.Errorf("watching canary %s/%s: %w", cd.Namespace, cd.Name, apierrors.FromObject(ev.Object))
		case watch.Deleted:
			return false, fmt.Errorf("canary %s/%s was deleted", cd.Namespace, cd.Name)
		case watch.Added, watch.Modified:
			cur, ok := ev.Object.(*flaggerv1beta1.Canary)
			if ok && cur.Annotations[annotationRequestID] != id {
				taken = cur
				return true, nil
			}
		}
		return false, nil
	})
	switch {
	case err != nil && parent.Err() != nil:
		return nil, parent.Err()
	case errors.Is(err, watchtools.ErrWatchClosed), wait.Interrupted(err), errors.Is(err, context.DeadlineExceeded):
		return nil, fmt.Errorf("the controller has not taken request %s within %s", id, timeout)
	case err != nil:
		return nil, err
	}
	return taken, nil
}

// eventGrace is how long the CLI waits for the controller's events of a
// request: the controller's recorder sends them after the status write.
const eventGrace = 3 * time.Second

// eventsSince returns the Canary's events from since on. When there is
// none yet, it watches for one for up to eventGrace.
func eventsSince(ctx context.Context, c client.WithWatch, cd *flaggerv1beta1.Canary, since time.Time) ([]corev1.Event, error) {
	list, err := listEvents(ctx, c, cd)
	if err != nil {
		return nil, err
	}
	if out := newerEvents(list.Items, since); len(out) > 0 {
		return out, nil
	}
	wctx, cancel := context.WithTimeout(ctx, eventGrace)
	defer cancel()
	opts := append(eventsOf(cd), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	w, err := c.Watch(wctx, &corev1.EventList{}, opts...)
	if err != nil {
		return nil, nil //nolint:nilerr // without a watch there is only what the list showed
	}
	defer w.Stop()
	for ev := range w.ResultChan() {
		if e, ok := ev.Object.(*corev1.Event); ok && !eventTime(*e).Before(since) {
			break
		}
	}
	if list, err = listEvents(ctx, c, cd); err != nil {
		return nil, err
	}
	return newerEvents(list.Items, since), nil
}

func newerEvents(events []corev1.Event, since time.Time) []corev1.Event {
	var out []corev1.Event
	for _, ev := range events {
		if !eventTime(ev).Before(since) {
			out = append(out, ev)
		}
	}
	return out
}

// printOutcome prints the phase the Canary is in after the request and the
// events since it was sent.
func (a *app) printOutcome(ctx context.Context, cs *clients, cd *flaggerv1beta1.Canary, sent time.Time) error {
	fmt.Fprintf(a.out(), "The controller took the request: canary %s/%s is %s", cd.Namespace, cd.Name, cd.Status.Phase)
	if msg := promotedMessage(cd); msg != "" {
		fmt.Fprintf(a.out(), ": %s", msg)
	}
	fmt.Fprintln(a.out())
	events, err := eventsSince(ctx, cs.client, cd, sent.Truncate(time.Second))
	if err != nil {
		fmt.Fprintf(a.out(), "  (cannot read the events: %s)\n", shortError(err))
		return nil
	}
	for _, ev := range events {
		fmt.Fprintf(a.out(), "  %-7s %s\n", ev.Type, ev.Message)
	}
	return nil
}
