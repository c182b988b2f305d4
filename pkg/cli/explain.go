package cli

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// recentEvents is how many of the newest events explain prints.
const recentEvents = 8

// explainCommand is `explain NAME`.
func (a *app) explainCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "explain NAME",
		Short: "Say in plain words why a Canary is where it is and what happens next",
		Long: `explain reads the Canary's status, conditions, events and analysis history and says why it is in
its phase (the check that failed with its value and threshold, the gate it waits on and how to open
it, the concurrency cap, what makes it invalid), which deadline is near and what happens next.`,
		Example: "  kubectl sluice explain podinfo -n test",
		Args:    nameArg("explain NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cd, cs, err := a.getCanary(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			e := newExplanation(a.observe(cmd.Context(), cs, cd), a.now())
			return e.write(a.out(), a.width())
		},
	}
}

// explanation is what explain says: a summary sentence, the reasons, and
// what happens next, each a list of paragraphs.
type explanation struct {
	v       *view
	now     time.Time
	summary string
	why     []paragraph
	next    []paragraph
	// paused leaves out the commands that a paused Canary refuses.
	paused bool
	// gated is set when a gate held the last step.
	gated bool
}

// paragraph is text, or a bulleted item when bullet is set.
type paragraph struct {
	text   string
	bullet bool
}

func (e *explanation) because(format string, args ...any) {
	e.why = append(e.why, paragraph{text: fmt.Sprintf(format, args...)})
}

func (e *explanation) becauseItem(format string, args ...any) {
	e.why = append(e.why, paragraph{text: fmt.Sprintf(format, args...), bullet: true})
}

func (e *explanation) then(format string, args ...any) {
	e.next = append(e.next, paragraph{text: fmt.Sprintf(format, args...)})
}

// newExplanation explains a Canary: deletion, invalid input and pause come
// before the phase, because they stop everything else.
func newExplanation(v *view, now time.Time) *explanation {
	e := &explanation{v: v, now: now}
	cd := v.cd
	switch c := condition(cd, flaggerv1beta1.ValidType); {
	case c != nil && c.Status == corev1.ConditionFalse:
		e.invalid(c)
	case cd.Spec.Suspend && cd.DeletionTimestamp.IsZero():
		e.pause()
	default:
		e.phase()
	}
	if r := cd.Annotations[annotationRequest]; r != "" {
		e.then("A %s request by %s (%s, id %s) waits for the controller, which takes it at its next look at this Canary.",
			r, orUnknown(cd.Annotations[annotationRequestBy]), quoteReason(cd.Annotations[annotationRequestReason]),
			cd.Annotations[annotationRequestID])
	}
	return e
}

// phase explains the Canary by its phase.
func (e *explanation) phase() {
	switch e.v.cd.Status.Phase {
	case "":
		e.fresh()
	case flaggerv1beta1.CanaryPhaseInitializing:
		e.initializing()
	case flaggerv1beta1.CanaryPhaseInitialized, flaggerv1beta1.CanaryPhaseSucceeded:
		e.idle()
	case flaggerv1beta1.CanaryPhaseWaiting:
		e.waiting()
	case flaggerv1beta1.CanaryPhaseProgressing:
		e.progressing()
	case flaggerv1beta1.CanaryPhaseWaitingPromotion:
		e.waitingPromotion()
	case flaggerv1beta1.CanaryPhasePromoting:
		e.promoting()
	case flaggerv1beta1.CanaryPhaseFinalising:
		e.finalising()
	case flaggerv1beta1.CanaryPhaseFailed:
		e.failed()
	case flaggerv1beta1.CanaryPhaseTerminating, flaggerv1beta1.CanaryPhaseTerminated:
		e.terminating()
	default:
		e.summary = fmt.Sprintf("is in phase %s, which this kubectl-sluice does not know", e.v.cd.Status.Phase)
	}
}

// write prints the explanation fitted to width columns.
func (e *explanation) write(w io.Writer, width int) error {
	cd := e.v.cd
	var b strings.Builder
	b.WriteString(wrap("", "", fmt.Sprintf("Canary %s/%s %s.", cd.Namespace, cd.Name, e.summary), width))
	section := func(title string, ps []paragraph) {
		if len(ps) == 0 {
			return
		}
		b.WriteString("\n" + title + "\n")
		for _, p := range ps {
			if p.bullet {
				b.WriteString(wrap("  - ", "    ", p.text, width))
			} else {
				b.WriteString(wrap("  ", "  ", p.text, width))
			}
		}
	}
	section("Why:", e.why)
	section("What happens next:", e.next)
	e.writeEvents(&b, width)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeEvents adds the newest events, oldest of them first.
func (e *explanation) writeEvents(b *strings.Builder, width int) {
	b.WriteString("\nRecent events:\n")
	if e.v.eventsErr != "" {
		b.WriteString(wrap("  ", "  ", "cannot read the events: "+e.v.eventsErr, width))
		return
	}
	events := e.v.events
	if len(events) == 0 {
		b.WriteString("  none (events expire after an hour)\n")
		return
	}
	if len(events) > recentEvents {
		events = events[len(events)-recentEvents:]
	}
	for _, ev := range events {
		msg := ev.Message
		if ev.Count > 1 {
			msg += fmt.Sprintf(" (%d times)", ev.Count)
		}
		first := fmt.Sprintf("  %-8s %-7s ", age(e.now, eventTime(ev)), ev.Type)
		b.WriteString(wrap(first, strings.Repeat(" ", len(first)), msg, width))
	}
}

// invalid explains a Canary that Sluice cannot act on.
func (e *explanation) invalid(c *flaggerv1beta1.CanaryCondition) {
	cd := e.v.cd
	e.summary = "cannot be acted on: " + c.Reason
	e.because("%s", c.Message)
	e.because("Sluice reported this %s (condition Valid=False, reason %s).", ago(e.now, c.LastTransitionTime.Time), c.Reason)
	stays := "the workloads and the traffic stay as they are"
	if cd.Status.Phase != "" {
		stays = fmt.Sprintf("the Canary stays in phase %s and %s", cd.Status.Phase, stays)
	}
	e.then("Nothing moves until this is fixed: %s. Sluice looks again as soon as the Canary changes.", stays)
	if c.Reason == "MetricUnavailable" {
		e.then("It also retries every analysis interval (%s), so a metrics provider that comes back is noticed without a change.",
			intervalOf(cd))
	}
}

// pause explains a suspended Canary, then where it stands.
func (e *explanation) pause() {
	cd := e.v.cd
	e.paused = true
	e.because("spec.suspend is true: Sluice does not act on this Canary at all: no step, no promotion, no rollback.")
	if cd.Status.WaitingSince != nil {
		e.because("Deadlines keep counting while it is paused: the current wait began %s, and a deadline that passed is acted on when it is resumed.",
			ago(e.now, cd.Status.WaitingSince.Time))
	}
	e.then("Resume it with: kubectl sluice resume %s -n %s", cd.Name, cd.Namespace)
	e.then("Once resumed:")
	e.phase()
	e.summary = fmt.Sprintf("is paused in phase %s; it %s", phaseOrNew(cd), e.summary)
}

// fresh explains a Canary without status.
func (e *explanation) fresh() {
	cd := e.v.cd
	e.summary = "has not been picked up by Sluice yet"
	e.because("Its status is empty: no Sluice controller has acted on it yet.")
	e.then("A running Sluice that watches namespace %s creates %s-primary and the Services within seconds. If nothing happens, check that the controller runs (its -namespace flag must include %s).",
		cd.Namespace, cd.Spec.TargetRef.Name, cd.Namespace)
}

// promotedMessage is the Promoted condition's message.
func promotedMessage(cd *flaggerv1beta1.Canary) string {
	if c := condition(cd, flaggerv1beta1.PromotedType); c != nil {
		return c.Message
	}
	return ""
}

// deadline says when the current wait ends and whether it passed.
func (e *explanation) deadline() (time.Time, bool) {
	s := e.v.cd.Status
	if s.WaitingSince == nil {
		return time.Time{}, false
	}
	return s.WaitingSince.Add(deadlineOf(e.v.cd)), true
}

// deadlineText describes the progress deadline of the current wait.
func (e *explanation) deadlineText(what string) string {
	at, ok := e.deadline()
	if !ok {
		return ""
	}
	d := deadlineOf(e.v.cd)
	if at.After(e.now) {
		return fmt.Sprintf("The progress deadline (%s, progressDeadlineSeconds) ends %s, at %s; %s.", d, until(e.now, at), at.UTC().Format(time.RFC3339), what)
	}
	return fmt.Sprintf("The progress deadline (%s, progressDeadlineSeconds) passed %s; %s.", d, ago(e.now, at), what)
}

// step is the failing checks of one analysis step.
type step struct {
	at     time.Time
	checks []flaggerv1beta1.CanaryCheckResult
}

// failedSteps returns the newest n analysis steps with failed checks that
// counted, up to end and not before start, oldest first.
func failedSteps(history []flaggerv1beta1.CanaryCheckResult, n int, start, end time.Time) []step {
	var steps []step
	for _, c := range history {
		t := c.Time.Time
		if !c.Counts() || t.Before(start) || t.After(end) {
			continue
		}
		if k := len(steps); k > 0 && steps[k-1].at.Equal(t) {
			steps[k-1].checks = append(steps[k-1].checks, c)
			continue
		}
		steps = append(steps, step{at: t, checks: []flaggerv1beta1.CanaryCheckResult{c}})
	}
	if n >= 0 && len(steps) > n {
		steps = steps[len(steps)-n:]
	}
	return steps
}

// checkSentence says what a check measured against what it wanted.
func checkSentence(c flaggerv1beta1.CanaryCheckResult) string {
	what := fmt.Sprintf("%s %s", c.Kind, c.Name)
	switch {
	case c.Value != nil && (c.Min != nil || c.Max != nil):
		rel := "outside"
		switch {
		case c.Min != nil && *c.Value < *c.Min:
			rel = "below the minimum " + number(*c.Min)
		case c.Max != nil && *c.Value > *c.Max:
			rel = "above the maximum " + number(*c.Max)
		case c.Passed:
			rel = "within " + thresholdText(c.Min, c.Max)
		}
		return fmt.Sprintf("%s measured %s, %s", what, number(*c.Value), rel)
	case c.Value != nil:
		return fmt.Sprintf("%s measured %s", what, number(*c.Value))
	case c.Message != "":
		return fmt.Sprintf("%s: %s", what, c.Message)
	}
	return what
}

// runStart is when the current (or last) analysis began: the newest
// "New revision detected" event up to end. Zero when the events are gone.
func (e *explanation) runStart(end time.Time) time.Time {
	var start time.Time
	for _, ev := range e.v.events {
		if t := eventTime(ev); strings.HasPrefix(ev.Message, "New revision detected") && !t.After(end) && t.After(start) {
			start = t
		}
	}
	return start
}

// newestEvent returns the newest event whose message starts with prefix.
func (e *explanation) newestEvent(prefix string) *corev1.Event {
	for i := len(e.v.events) - 1; i >= 0; i-- {
		if strings.HasPrefix(e.v.events[i].Message, prefix) {
			return &e.v.events[i]
		}
	}
	return nil
}

// gateHowTo says how to open the gates of a webhook type that a load
// tester serves.
func (e *explanation) gateHowTo(t flaggerv1beta1.HookType) string {
	cd := e.v.cd
	urls := gateURLs(cd, []flaggerv1beta1.HookType{t})
	if len(urls) == 0 {
		return fmt.Sprintf("The %s webhooks are not the load tester's /gate/check, so kubectl sluice cannot open them: make each of them answer with a 2xx status.", t)
	}
	open := strings.TrimSuffix(urls[0], "/check") + "/open"
	return fmt.Sprintf("Open it with: kubectl sluice gate open %s -n %s (or: curl -d '{\"name\": %q, \"namespace\": %q}' %s).",
		cd.Name, cd.Namespace, cd.Name, cd.Namespace, open)
}

// hasHooks reports whether the analysis has webhooks of a type.
func hasHooks(cd *flaggerv1beta1.Canary, t flaggerv1beta1.HookType) bool {
	return cd.Spec.Analysis != nil && slices.ContainsFunc(cd.Spec.Analysis.Webhooks, func(h flaggerv1beta1.CanaryWebhook) bool {
		return h.EffectiveType() == t
	})
}

// plural is "1 check" or "2 checks".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func quoteReason(r string) string {
	if r == "" {
		return "no reason given"
	}
	return strconv.Quote(r)
}
