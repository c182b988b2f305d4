//go:build e2e

package takeover

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// analysisInterval is both Canaries' analysis interval.
const analysisInterval = 10 * time.Second

// TestTakeover tells one story on one cluster, step by step: Flagger
// installs and promotes, Sluice replaces it in place, Flagger comes back,
// and Sluice refuses to share Canaries with a live Flagger. A step whose
// assertions fail still leaves the world settled for the next one; a step
// that cannot reach that state stops the story.
func TestTakeover(t *testing.T) {
	w := newWorld(t)
	steps := []struct {
		name string
		fn   func(*world)
	}{
		{"FlaggerInitializesAndPromotes", (*world).flaggerInitializesAndPromotes},
		{"SluiceTakesOverWithoutANewAnalysis", (*world).sluiceTakesOver},
		{"SluiceAnalysesTheNextRevision", (*world).sluiceAnalysesTheNextRevision},
		{"FlaggerTakesBackFromSluice", (*world).flaggerTakesBack},
		{"SluiceRefusesWhileFlaggerRuns", (*world).sluiceRefusesWhileFlaggerRuns},
	}
	for _, s := range steps {
		settled := false
		w.step(s.name, func(st *testing.T) {
			s.fn(w)
			settled = true // not reached after a Fatal
		})
		if !settled {
			t.Fatalf("step %s did not reach the state the next steps need; stopping", s.name)
		}
	}
}

// flaggerInitializesAndPromotes: Flagger, with its own CRDs, initialises
// an Istio canary and a blue/green canary, promotes 6.1.0 of each, and is
// stopped as the migration guide says.
func (w *world) flaggerInitializesAndPromotes() {
	w.create(namespaces()...)
	w.create(flaggerDeployment())
	w.create(workloads()...)
	w.startFlagger()
	w.create(canaries()...)
	w.waitPhases(2*time.Minute, flaggerv1beta1.CanaryPhaseInitialized)
	w.primaryImages("6.0.0")
	if l, err := w.lease(); err != nil || ptr.Deref(l.Spec.HolderIdentity, "") == "" {
		w.t.Errorf("Flagger's Lease %s/%s is not held while Flagger runs (%v)", flaggerNamespace, flaggerLease, err)
	}

	w.release("6.1.0")
	w.waitPhases(time.Minute, flaggerv1beta1.CanaryPhaseProgressing)
	w.waitPhases(3*time.Minute, flaggerv1beta1.CanaryPhaseSucceeded)
	w.primaryImages("6.1.0")
	w.checkFlaggerHashes()

	w.stopFlagger()
	l, err := w.lease()
	switch {
	case isNotFound(err):
		w.logf("Flagger's Lease is gone after SIGTERM")
	case err != nil:
		w.t.Fatal(err)
	default:
		w.logf("Flagger's Lease after SIGTERM: holder %q, duration %ds, renewed %s",
			ptr.Deref(l.Spec.HolderIdentity, ""), ptr.Deref(l.Spec.LeaseDurationSeconds, 0), l.Spec.RenewTime)
		if ptr.Deref(l.Spec.HolderIdentity, "") != "" {
			w.t.Errorf("Flagger kept its Lease after SIGTERM (holder %q): the guide must say to delete it", ptr.Deref(l.Spec.HolderIdentity, ""))
		}
	}
}

// checkFlaggerHashes checks flaggerSpecHash and flaggerConfigChecksum
// against what Flagger wrote for the revision it promoted.
func (w *world) checkFlaggerHashes() {
	w.t.Helper()
	for _, app := range apps {
		cd, err := w.canary(app)
		if err != nil {
			w.t.Fatal(err)
		}
		hash, tracked, err := flaggerView(w.ctx(), w.c, app)
		if err != nil {
			w.t.Fatal(err)
		}
		st := cd.Status
		if st.LastAppliedSpec != hash || st.LastPromotedSpec != hash || !maps.Equal(st.TrackedConfigs, tracked) {
			w.t.Errorf("Canary %s: Flagger wrote lastAppliedSpec %s, lastPromotedSpec %s, trackedConfigs %v; flaggerView computes %s and %v",
				app, st.LastAppliedSpec, st.LastPromotedSpec, st.TrackedConfigs, hash, tracked)
		}
	}
}

// sluiceTakesOver: Sluice's CRDs are applied over Flagger's and Sluice
// starts. For three analysis intervals nothing may move: no analysis, no
// rollout of a primary, no scaled target, no recreated Service or route,
// weights at 100/0.
//
// Waits for the controller side of issue 17: adopting the revision
// Flagger promoted (item 1) and Flagger's objects in place (item 2).
// Until then Sluice starts a new analysis of 6.1.0.
func (w *world) sluiceTakesOver() {
	before := w.observe()
	crds := w.crdUIDs()
	w.applySluiceCRDs()
	for name, uid := range w.crdUIDs() {
		if uid != crds[name] {
			w.t.Errorf("CRD %s was recreated by kubectl apply (UID %s -> %s)", name, crds[name], uid)
		}
	}
	if diff := changes(before, w.observe(), all); len(diff) > 0 {
		w.t.Errorf("applying Sluice's CRDs changed objects:\n  %s", strings.Join(diff, "\n  "))
	}

	w.startSluice()
	start := w.sluice.started
	seen := w.watch(3*analysisInterval+5*time.Second, before)
	if bad := report(before, seen, breaks); len(bad) > 0 {
		w.t.Errorf("Sluice changed what a takeover must keep (waits for issue 17 items 1-2: adopt Flagger's revision and objects):\n  %s",
			strings.Join(bad, "\n  "))
	}
	for _, e := range w.events("sluice", start) {
		if strings.HasPrefix(e.message, "New revision detected") {
			w.t.Errorf("Sluice started an analysis of the revision Flagger promoted (waits for issue 17 item 1): %s", e)
		}
		w.logf("Sluice event: %s", e)
	}
	if other := report(before, seen, func(k, _ string, _ []string) bool { return !invariant(k) }); len(other) > 0 {
		w.logf("rewritten in place by Sluice (allowed):\n  %s", strings.Join(other, "\n  "))
	}
	w.logf("objects Sluice wrote: %v", w.writes("sluice", start))

	// Settle before the next release, whatever Sluice did.
	w.waitPhases(3*time.Minute, flaggerv1beta1.CanaryPhaseSucceeded)
}

// sluiceAnalysesTheNextRevision: a new revision of each target is
// analysed and promoted by Sluice, keeping the Services and routes.
func (w *world) sluiceAnalysesTheNextRevision() {
	before := w.observe()
	released := time.Now()
	w.release("6.2.0")
	w.waitPhases(time.Minute, flaggerv1beta1.CanaryPhaseProgressing)
	w.waitPhases(3*time.Minute, flaggerv1beta1.CanaryPhaseSucceeded)
	w.primaryImages("6.2.0")

	analysed := map[string]bool{}
	for _, e := range w.events("sluice", released) {
		if strings.HasPrefix(e.message, "New revision detected") {
			analysed[e.object] = true
		}
	}
	for _, app := range apps {
		if !analysed[app] {
			w.t.Errorf("no \"New revision detected\" event from Sluice for Canary %s after the release", app)
		}
	}
	after := w.observe()
	if diff := changes(before, after, identity); len(diff) > 0 {
		w.t.Errorf("Sluice's promotion recreated objects:\n  %s", strings.Join(diff, "\n  "))
	}
	if got, want := after["VirtualService/"+istioApp+" weights"], before["VirtualService/"+istioApp+" weights"]; got != want {
		w.t.Errorf("VirtualService weights after Sluice's promotion = %s, want %s", got, want)
	}
}

// flaggerTakesBackFromSluice: Sluice is stopped and Flagger started
// again, as the guide's way back says. Flagger must accept the objects
// Sluice leaves (no Warning, no recreated object) and end with the
// revision Sluice promoted. Whether it analyses that revision again is
// recorded in the log and checked against flaggerReanalyses.
func (w *world) flaggerTakesBack() {
	w.stopSluice()
	predicted := map[string]bool{}
	for _, app := range apps {
		view, accepted := w.flaggerWouldSee(app)
		predicted[app] = !accepted
		w.logf("Canary %s as Sluice leaves it for Flagger: %s", app, view)
	}
	before := w.observe()
	w.startFlagger()
	start := w.flagger.started

	// Flagger looks at each Canary one analysis interval after it
	// schedules it, and schedules every 10s: four intervals see at least
	// two looks.
	seen := w.watch(4*analysisInterval, before)
	reanalysed := map[string]bool{}
	for _, app := range apps {
		for _, ph := range seen["Canary/"+app+" phase"] {
			if ph == string(flaggerv1beta1.CanaryPhaseProgressing) {
				reanalysed[app] = true
			}
		}
	}
	w.waitPhases(3*time.Minute, flaggerv1beta1.CanaryPhaseSucceeded)
	w.primaryImages("6.2.0")

	changed := report(before, seen, anyChange)
	w.logf("what Flagger changed after Sluice:\n  %s", strings.Join(changed, "\n  "))
	for _, e := range w.events("flagger", start) {
		w.logf("Flagger event: %s", e)
		if e.typ != "Normal" {
			w.t.Errorf("Flagger did not accept what Sluice left: %s", e)
		}
	}
	w.logf("objects Flagger wrote: %v", w.writes("flagger", start))
	if diff := changes(before, w.observe(), identity); len(diff) > 0 {
		w.t.Errorf("Flagger recreated objects Sluice left:\n  %s", strings.Join(diff, "\n  "))
	}
	for _, app := range apps {
		if reanalysed[app] != predicted[app] {
			w.t.Errorf("Canary %s: Flagger analysed the promoted revision again = %v, but the status Sluice left predicts %v",
				app, reanalysed[app], predicted[app])
		}
		if reanalysed[app] != flaggerReanalyses {
			w.t.Errorf("Canary %s: Flagger analysed Sluice's promoted revision again = %v, want %v (docs/migrate-from-flagger.md, \"Going back to Flagger\")",
				app, reanalysed[app], flaggerReanalyses)
		}
	}
}

// flaggerWouldSee describes the Canary's revision fields next to what
// Flagger 1.44 computes for its target, and reports whether Flagger will
// take the target for promoted: its lastPromotedSpec equals Flagger's hash
// of the target's pod template (then lastAppliedSpec does not matter) and
// its trackedConfigs equal Flagger's checksums. Both ways were seen with
// the real Flagger: with Sluice's own values it analyses again, with
// Flagger's values written into the status it does not.
func (w *world) flaggerWouldSee(app string) (string, bool) {
	w.t.Helper()
	cd, err := w.canary(app)
	if err != nil {
		w.t.Fatal(err)
	}
	hash, tracked, err := flaggerView(w.ctx(), w.c, app)
	if err != nil {
		w.t.Fatal(err)
	}
	st := cd.Status
	promoted, configs := st.LastPromotedSpec == hash, maps.Equal(st.TrackedConfigs, tracked)
	return fmt.Sprintf("lastAppliedSpec %s, lastPromotedSpec %s (Flagger's hash of the target: %s, match %v), trackedConfigs %v (Flagger's: %v, match %v)",
		st.LastAppliedSpec, st.LastPromotedSpec, hash, promoted, st.TrackedConfigs, tracked, configs), promoted && configs
}

// flaggerReanalyses is what docs/migrate-from-flagger.md says Flagger does
// with a revision that Sluice promoted. Sluice writes its own revision to
// lastAppliedSpec and lastPromotedSpec and its own checksums to
// trackedConfigs; none is the value Flagger computes, so Flagger takes
// the promoted revision for a new one and runs one more analysis of it.
// If Sluice comes to write Flagger's values (see flaggerWouldSee), flip
// this and the guide's "Going back to Flagger" together.
const flaggerReanalyses = true

// sluiceRefusesWhileFlaggerRuns: Sluice started while Flagger runs must
// refuse to act on the Canaries, saying so in a Warning event that names
// Flagger, and write nothing; then the same with Flagger's process gone
// (its Lease released) but its Deployment still scaled up.
//
// Waits for issue 17 item 4 (detecting a live Flagger).
func (w *world) sluiceRefusesWhileFlaggerRuns() {
	w.refuses("Flagger's Lease is held and its Deployment is available")

	w.stopSluice()
	w.stopFlaggerProcess()
	w.refuses("Flagger's Deployment is available, its Lease released")
}

// refuses starts Sluice and checks that, for two analysis intervals, it
// writes nothing and warns about Flagger on each Canary.
func (w *world) refuses(situation string) {
	w.t.Helper()
	before := w.observe()
	w.startSluice()
	start := w.sluice.started
	seen := w.watch(2*analysisInterval, before)
	// Sluice may say why it refuses in a condition; nothing else moves.
	notCondition := func(k, _ string, _ []string) bool { return !strings.Contains(k, " condition ") }
	if diff := report(before, seen, notCondition); len(diff) > 0 {
		w.t.Errorf("%s: objects changed while Sluice should refuse to act (waits for issue 17 item 4):\n  %s", situation, strings.Join(diff, "\n  "))
	}
	var wrote []string
	for _, o := range w.writes("sluice", start) {
		if !strings.HasPrefix(o, "Canary/") || !strings.Contains(o, "/status at") {
			wrote = append(wrote, o)
		}
	}
	if len(wrote) > 0 {
		w.t.Errorf("%s: Sluice wrote %v while it should refuse to act (waits for issue 17 item 4)", situation, wrote)
	}
	warned := map[string]bool{}
	for _, e := range w.events("sluice", start) {
		w.logf("Sluice event: %s", e)
		if e.typ == "Warning" && strings.Contains(e.message, "Flagger") {
			warned[e.object] = true
		}
	}
	for _, app := range apps {
		if !warned[app] {
			w.t.Errorf("%s: no Warning event from Sluice naming Flagger on Canary %s (waits for issue 17 item 4)", situation, app)
		}
	}
}

// identity selects the facts that say an object is the same object:
// UIDs and ClusterIPs.
func identity(key string) bool {
	return strings.HasSuffix(key, " uid") || strings.HasSuffix(key, " clusterIP")
}
