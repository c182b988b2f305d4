package cli

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/controller/statemachine"
)

// strategyNames are the strategies in words.
var strategyNames = map[statemachine.Strategy]string{
	statemachine.CanaryRelease: "canary release",
	statemachine.ABTesting:     "A/B testing",
	statemachine.BlueGreen:     "blue/green",
}

// renderTree writes the Canary as a tree: a header, then its workloads,
// Services, routing object, webhooks and analysis history. Lines are cut
// to width.
func renderTree(out io.Writer, v *view, now time.Time, width int) error {
	var buf bytes.Buffer
	header(&buf, v, now)
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	t := &tree{w: tw}
	t.leaf(false, fmt.Sprintf("%s %s\t(canary)\t%s", v.target.kind, v.target.name, replicas(v.target)))
	t.leaf(false, fmt.Sprintf("%s %s\t(primary)\t%s", v.primary.kind, v.primary.name, replicas(v.primary)))
	t.branch(false, "Services\t\t")
	for i, s := range v.services {
		t.child(i == len(v.services)-1, fmt.Sprintf("%s\t(%s)\t%s", s.name, s.role, found(s.found, s.err)))
	}
	t.leaf(false, fmt.Sprintf("%s %s\t(routing, %s)\t%s", v.routing.kind, v.routing.name, v.provider, split(v.routing)))
	t.branch(false, "Webhooks\t\t")
	if len(v.hooks) == 0 {
		t.child(true, "none")
	}
	for i, h := range v.hooks {
		t.child(i == len(v.hooks)-1, fmt.Sprintf("%s\t(%s)\t%s", h.hook.Name, h.hook.EffectiveType(), hookResult(h, now)))
	}
	t.branch(true, "Analysis (newest last)")
	if len(v.cd.Status.Analysis) == 0 {
		t.child(true, "no checks yet")
	}
	for i, c := range v.cd.Status.Analysis {
		t.child(i == len(v.cd.Status.Analysis)-1, checkRow(c, now))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, line := range strings.Split(strings.TrimRight(buf.String(), "\n"), "\n") {
		if _, err := fmt.Fprintln(out, truncate(strings.TrimRight(line, " "), width)); err != nil {
			return err
		}
	}
	return nil
}

// header writes the lines above the tree: where the Canary is and why.
func header(w io.Writer, v *view, now time.Time) {
	cd, s := v.cd, v.cd.Status
	fmt.Fprintf(w, "Canary:    %s/%s\n", cd.Namespace, cd.Name)
	phase := string(s.Phase)
	if phase == "" {
		phase = "New (not picked up by Sluice yet)"
	}
	if !s.LastTransitionTime.IsZero() {
		phase += " for " + age(now, s.LastTransitionTime.Time)
	}
	fmt.Fprintf(w, "Phase:     %s\n", phase)
	fmt.Fprintf(w, "Progress:  %s\n", progress(v))
	fmt.Fprintf(w, "Strategy:  %s on %s, a step every %s\n", strategyNames[v.strategy], v.provider, intervalOf(cd))
	if cd.Spec.Suspend {
		fmt.Fprintln(w, "Paused:    yes (spec.suspend): Sluice does not act on this Canary until it is resumed")
	}
	if c := condition(cd, flaggerv1beta1.ValidType); c != nil && c.Status == "False" {
		fmt.Fprintf(w, "Invalid:   %s: %s\n", c.Reason, c.Message)
	}
	if c := condition(cd, flaggerv1beta1.PromotedType); c != nil && c.Message != "" {
		fmt.Fprintf(w, "Message:   %s\n", c.Message)
	}
	if r := cd.Annotations[annotationRequest]; r != "" {
		fmt.Fprintf(w, "Request:   %s by %s, waiting for the controller\n", r, cd.Annotations[annotationRequestBy])
	}
}

// progress says how far the analysis got.
func progress(v *view) string {
	s := v.cd.Status
	parts := []string{}
	switch v.strategy {
	case statemachine.CanaryRelease:
		parts = append(parts, fmt.Sprintf("canary weight %d%% (max %d%%)", s.CanaryWeight, maxWeight(v.cd)))
	default:
		parts = append(parts, fmt.Sprintf("canary weight %d%%", s.CanaryWeight))
	}
	iter := fmt.Sprintf("iteration %d", s.Iterations)
	if n := iterationsOf(v); n > 0 {
		iter += fmt.Sprintf(" of %d", n)
	}
	parts = append(parts, iter, fmt.Sprintf("failed checks %d of %d", s.FailedChecks, threshold(v.cd)))
	return strings.Join(parts, ", ")
}

// tree draws the branches of the tree into a tabwriter.
type tree struct {
	w *tabwriter.Writer
	// lastBranch is true when the current branch is the last one, so its
	// children are not under a vertical line.
	lastBranch bool
}

func (t *tree) leaf(last bool, text string) {
	fmt.Fprintf(t.w, "%s%s\n", edge(last), text)
}

func (t *tree) branch(last bool, text string) {
	t.lastBranch = last
	fmt.Fprintf(t.w, "%s%s\n", edge(last), text)
}

func (t *tree) child(last bool, text string) {
	prefix := "│   "
	if t.lastBranch {
		prefix = "    "
	}
	fmt.Fprintf(t.w, "%s%s%s\n", prefix, edge(last), text)
}

func edge(last bool) string {
	if last {
		return "└── "
	}
	return "├── "
}

func replicas(w workloadView) string {
	switch {
	case w.err != "":
		return w.err
	case !w.found:
		return "not found"
	}
	return fmt.Sprintf("%d/%d ready", w.ready, w.desired)
}

func found(ok bool, err string) string {
	switch {
	case err != "":
		return err
	case ok:
		return "exists"
	}
	return "not found"
}

// split prints the routing object's split.
func split(r routingView) string {
	if r.err != "" {
		return r.err
	}
	s := fmt.Sprintf("primary %d%%, canary %d%%", r.routes.Primary, r.routes.Canary)
	if r.routes.Mirrored {
		s += ", mirrored to the canary"
	}
	return s
}

// hookResult is a webhook's last answer.
func hookResult(h hookView, now time.Time) string {
	switch {
	case h.last != nil && h.last.Passed:
		return "passed " + ago(now, h.last.Time.Time)
	case h.last != nil:
		return fmt.Sprintf("failed %s: %s", ago(now, h.last.Time.Time), h.last.Message)
	case h.refusal != "":
		return fmt.Sprintf("said no %s: %s", ago(now, h.refusalTime), h.refusal)
	case isGate(h.hook.EffectiveType()):
		return "no refusal recorded"
	}
	return "not called in the recorded history"
}

// checkRow is one check of the analysis history, in tab-separated cells:
// when, what, value against threshold, verdict, weight.
func checkRow(c flaggerv1beta1.CanaryCheckResult, now time.Time) string {
	return strings.Join([]string{ago(now, c.Time.Time), string(c.Kind) + " " + c.Name, measured(c), verdict(c),
		fmt.Sprintf("at %d%%", c.CanaryWeight)}, "\t")
}

// measured is a check's value against its threshold, or what went wrong.
func measured(c flaggerv1beta1.CanaryCheckResult) string {
	if c.Value != nil {
		if t := thresholdText(c.Min, c.Max); t != "" {
			return fmt.Sprintf("%s (want %s)", number(*c.Value), t)
		}
		return number(*c.Value)
	}
	if c.Message != "" {
		return c.Message
	}
	return "-"
}

// verdict is pass or FAIL, with why a failure did not count.
func verdict(c flaggerv1beta1.CanaryCheckResult) string {
	switch {
	case c.Passed && c.NoData:
		return "skipped (no data)"
	case c.Passed:
		return "pass"
	case c.Held:
		return "held (no data)"
	case c.DryRun:
		return "fail (dry run)"
	}
	return "FAIL"
}
