//go:build e2e

package takeover

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// world is the state the takeover steps share: one control plane, one
// namespace of workloads and Canaries, and whichever controller runs.
type world struct {
	t     *testing.T
	c     client.Client
	begin time.Time
	// flagger and sluice are the running controllers, nil when stopped.
	flagger, sluice *controller
	// runs counts the controllers' starts, to name their logs.
	runs map[string]int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	if suite.cluster == nil {
		t.Fatal("the control plane is not running: run through TestMain (go test -tags e2e)")
	}
	w := &world{t: t, c: suite.cluster.Client, begin: time.Now(), runs: map[string]int{}}
	t.Cleanup(func() {
		if t.Failed() {
			w.dump()
		}
		w.stopSluice()
		w.stopFlagger()
	})
	return w
}

// step runs one step of the story as a subtest, which reports through
// st.
func (w *world) step(name string, fn func(st *testing.T)) bool {
	return w.t.Run(name, func(st *testing.T) {
		outer := w.t
		w.t = st
		defer func() { w.t = outer }()
		fn(st)
	})
}

func (w *world) logf(format string, args ...any) {
	w.t.Helper()
	w.t.Logf("%6s "+format, append([]any{time.Since(w.begin).Round(100 * time.Millisecond)}, args...)...)
}

func (w *world) ctx() context.Context { return w.t.Context() }

// create creates the objects.
func (w *world) create(objs ...client.Object) {
	w.t.Helper()
	for _, o := range objs {
		if err := w.c.Create(w.ctx(), o); err != nil {
			w.t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

// startFlagger starts Flagger and scales its Deployment to one replica.
func (w *world) startFlagger() {
	w.t.Helper()
	w.scaleFlaggerDeployment(1)
	w.runs["flagger"]++
	p, err := startFlagger(fmt.Sprintf("flagger-%d.log", w.runs["flagger"]))
	if err != nil {
		w.t.Fatal(err)
	}
	w.flagger = p
	w.logf("Flagger started (log %s)", p.logPath)
}

// stopFlagger stops Flagger as `kubectl scale deploy/flagger --replicas 0`
// would: its Deployment goes to zero replicas and the process gets
// SIGTERM.
func (w *world) stopFlagger() {
	if w.flagger == nil {
		return
	}
	w.scaleFlaggerDeployment(0)
	w.stopFlaggerProcess()
}

// stopFlaggerProcess sends Flagger SIGTERM and leaves its Deployment as
// it is.
func (w *world) stopFlaggerProcess() {
	if w.flagger == nil {
		return
	}
	exit, err := w.flagger.stop()
	if err != nil {
		w.t.Error(err)
	}
	w.logf("Flagger stopped: %s", exit)
	w.flagger = nil
}

// startSluice starts Sluice.
func (w *world) startSluice() {
	w.t.Helper()
	w.runs["sluice"]++
	p, err := startSluice(fmt.Sprintf("sluice-%d.log", w.runs["sluice"]))
	if err != nil {
		w.t.Fatal(err)
	}
	w.sluice = p
	w.logf("Sluice started (log %s)", p.logPath)
}

// stopSluice stops Sluice with SIGTERM.
func (w *world) stopSluice() {
	if w.sluice == nil {
		return
	}
	exit, err := w.sluice.stop()
	if err != nil {
		w.t.Error(err)
	}
	if exit != "exit status 0" {
		w.t.Errorf("Sluice stopped with %s; see %s", exit, w.sluice.logPath)
	}
	w.logf("Sluice stopped: %s", exit)
	w.sluice = nil
}

// scaleFlaggerDeployment sets the replicas of Flagger's Deployment, and
// with one replica waits until it is available.
func (w *world) scaleFlaggerDeployment(replicas int32) {
	w.t.Helper()
	d := &appsv1.Deployment{}
	if err := w.c.Get(context.Background(), client.ObjectKey{Namespace: flaggerNamespace, Name: "flagger"}, d); err != nil {
		w.t.Errorf("reading Flagger's Deployment: %v", err)
		return
	}
	before := d.DeepCopy()
	d.Spec.Replicas = ptr.To(replicas)
	if err := w.c.Patch(context.Background(), d, client.MergeFrom(before)); err != nil {
		w.t.Errorf("scaling Flagger's Deployment to %d: %v", replicas, err)
		return
	}
	if replicas > 0 {
		ctx, cancel := context.WithTimeout(w.ctx(), time.Minute)
		defer cancel()
		if err := suite.cluster.WaitForRollout(ctx, flaggerNamespace, "flagger"); err != nil {
			w.t.Fatal(err)
		}
	}
}

// lease reads Flagger's leader-election Lease.
func (w *world) lease() (*coordinationv1.Lease, error) {
	l := &coordinationv1.Lease{}
	return l, w.c.Get(w.ctx(), client.ObjectKey{Namespace: flaggerNamespace, Name: flaggerLease}, l)
}

// release patches the image of both targets to tag.
func (w *world) release(tag string) {
	w.t.Helper()
	for _, app := range apps {
		d := &appsv1.Deployment{}
		if err := w.c.Get(w.ctx(), client.ObjectKey{Namespace: ns, Name: app}, d); err != nil {
			w.t.Fatal(err)
		}
		before := d.DeepCopy()
		d.Spec.Template.Spec.Containers[0].Image = image + tag
		if err := w.c.Patch(w.ctx(), d, client.MergeFrom(before)); err != nil {
			w.t.Fatalf("releasing %s:%s: %v", app, tag, err)
		}
	}
	w.logf("released %s of %v", tag, apps)
}

// canary reads a Canary.
func (w *world) canary(name string) (*flaggerv1beta1.Canary, error) {
	cd := &flaggerv1beta1.Canary{}
	return cd, w.c.Get(w.ctx(), client.ObjectKey{Namespace: ns, Name: name}, cd)
}

// waitPhases waits until every Canary is in one of the phases, and fails
// the test at once if one fails.
func (w *world) waitPhases(timeout time.Duration, phases ...flaggerv1beta1.CanaryPhase) {
	w.t.Helper()
	w.eventually(timeout, fmt.Sprintf("both Canaries %v", phases), func() (bool, error) {
		for _, app := range apps {
			cd, err := w.canary(app)
			if err != nil {
				return false, err
			}
			if cd.Status.Phase == flaggerv1beta1.CanaryPhaseFailed && !slices.Contains(phases, flaggerv1beta1.CanaryPhaseFailed) {
				return false, fmt.Errorf("%w: Canary %s failed", errStop, app)
			}
			if !slices.Contains(phases, cd.Status.Phase) {
				return false, fmt.Errorf("Canary %s is %s", app, cd.Status.Phase)
			}
		}
		return true, nil
	})
	w.logf("both Canaries %v", phases)
}

// primaryImages checks that both primaries run tag.
func (w *world) primaryImages(tag string) {
	w.t.Helper()
	for _, app := range apps {
		d := &appsv1.Deployment{}
		if err := w.c.Get(w.ctx(), client.ObjectKey{Namespace: ns, Name: app + "-primary"}, d); err != nil {
			w.t.Fatal(err)
		}
		if got := d.Spec.Template.Spec.Containers[0].Image; got != image+tag {
			w.t.Errorf("%s-primary runs %s, want %s%s", app, got, image, tag)
		}
	}
}

// observe reads the facts, failing the test if it cannot.
func (w *world) observe() facts {
	w.t.Helper()
	f, err := observe(w.ctx(), w.c)
	if err != nil {
		w.t.Fatal(err)
	}
	return f
}

// errStop ends a poll at once with its error.
var errStop = errors.New("stop polling")

// eventually calls check every 500ms until it reports done, fails the
// test at once when check returns an error wrapping errStop, and after
// timeout saying what it waited for.
func (w *world) eventually(timeout time.Duration, what string, check func() (bool, error)) {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		switch {
		case errors.Is(err, errStop):
			w.t.Fatalf("while waiting for %s: %v", what, err)
		case err == nil && done:
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s did not happen in %s (last: %v)", what, timeout, err)
		}
		select {
		case <-w.ctx().Done():
			w.t.Fatalf("waiting for %s: %v", what, w.ctx().Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// watch observes the facts every 500ms for d, and returns, for each fact
// that changed from before, the values it took in order.
func (w *world) watch(d time.Duration, before facts) map[string][]string {
	w.t.Helper()
	seen := map[string][]string{}
	for end := time.Now().Add(d); time.Now().Before(end); {
		now := w.observe()
		for k, v := range now {
			if v == before[k] {
				continue
			}
			if vals := seen[k]; len(vals) == 0 || vals[len(vals)-1] != v {
				seen[k] = append(vals, v)
			}
		}
		select {
		case <-w.ctx().Done():
			w.t.Fatal(w.ctx().Err())
		case <-time.After(500 * time.Millisecond):
		}
	}
	return seen
}

// report formats what watch saw, keeping the facts keep selects.
func report(before facts, seen map[string][]string, keep func(key, before string, vals []string) bool) []string {
	var out []string
	for k, vals := range seen {
		if keep(k, before[k], vals) {
			out = append(out, fmt.Sprintf("%s: %q -> %s", k, before[k], quoteAll(vals)))
		}
	}
	slices.Sort(out)
	return out
}

// anyChange keeps every fact in report.
func anyChange(string, string, []string) bool { return true }

func quoteAll(vals []string) string {
	q := make([]string, len(vals))
	for i, v := range vals {
		q[i] = fmt.Sprintf("%q", v)
	}
	return strings.Join(q, " -> ")
}

// events lists component's Canary events since t.
func (w *world) events(component string, since time.Time) []event {
	w.t.Helper()
	evs, err := events(w.ctx(), w.c, component, since)
	if err != nil {
		w.t.Fatal(err)
	}
	return evs
}

// writes lists the objects manager wrote since t.
func (w *world) writes(manager string, since time.Time) []string {
	w.t.Helper()
	out, err := writesBy(w.ctx(), w.c, manager, since)
	if err != nil {
		w.t.Fatal(err)
	}
	return out
}

// crdUIDs are the UIDs of the flagger.app CRDs, by name.
func (w *world) crdUIDs() map[string]types.UID {
	w.t.Helper()
	out := map[string]types.UID{}
	for _, name := range []string{"canaries.flagger.app", "metrictemplates.flagger.app", "alertproviders.flagger.app"} {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := w.c.Get(w.ctx(), client.ObjectKey{Name: name}, crd); err != nil {
			w.t.Fatalf("reading CRD %s: %v", name, err)
		}
		out[name] = crd.UID
	}
	return out
}

// applySluiceCRDs applies kustomize/base/crd with kubectl, as the
// migration guide says, over Flagger's CRDs.
func (w *world) applySluiceCRDs() {
	w.t.Helper()
	cmd := exec.CommandContext(w.ctx(), suite.kubectl, "--kubeconfig", suite.cluster.KubeconfigPath,
		"apply", "-f", filepath.Join(suite.root, "kustomize", "base", "crd"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("kubectl apply of Sluice's CRDs: %v\n%s", err, out)
	}
	w.logf("kubectl apply -f kustomize/base/crd:\n%s", strings.TrimSpace(string(out)))
	// Wait until the API server serves the new schema: a Canary read
	// back keeps a status field that only Sluice's schema has.
	w.eventually(30*time.Second, "Sluice's Canary schema to be served", func() (bool, error) {
		crd := &apiextensionsv1.CustomResourceDefinition{}
		if err := w.c.Get(w.ctx(), client.ObjectKey{Name: "canaries.flagger.app"}, crd); err != nil {
			return false, err
		}
		for _, c := range crd.Status.Conditions {
			if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
				_, ok := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["status"].Properties["analysis"]
				return ok, nil
			}
		}
		return false, nil
	})
}

// dump prints the Canaries' status, the events and the end of the
// controllers' logs, for a failed test.
func (w *world) dump() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, app := range apps {
		cd := &flaggerv1beta1.Canary{}
		if err := w.c.Get(ctx, client.ObjectKey{Namespace: ns, Name: app}, cd); err != nil {
			w.t.Logf("reading Canary %s: %v", app, err)
			continue
		}
		st, _ := yaml.Marshal(cd.Status)
		w.t.Logf("Canary %s status:\n%s", app, st)
	}
	for _, component := range []string{"flagger", "sluice"} {
		evs, err := events(ctx, w.c, component, time.Time{})
		if err != nil {
			w.t.Log(err)
			continue
		}
		var b strings.Builder
		for _, e := range evs {
			fmt.Fprintf(&b, "  %s\n", e)
		}
		w.t.Logf("%s events:\n%s", component, b.String())
	}
	for _, p := range []*controller{w.flagger, w.sluice} {
		if p != nil {
			w.t.Logf("%s log (%s), last lines:\n%s", p.name, p.logPath, tail(p.logPath, 30))
		}
	}
}

// namespaces creates the apps namespace and Flagger's.
func namespaces() []client.Object {
	return []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}},
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: flaggerNamespace}},
	}
}

// isNotFound reports whether err says an object does not exist.
func isNotFound(err error) bool { return apierrors.IsNotFound(err) }
