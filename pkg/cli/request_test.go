package cli

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// requestIDPattern is the id of a request sent at testNow.
var requestIDPattern = regexp.MustCompile(`^2026-07-01T12:00:00Z-[0-9a-f]{6}$`)

// playedCanary writes the Canary of a scenario into a new namespace.
func playedCanary(t *testing.T, ns, scenario string, change func(*player)) *flaggerv1beta1.Canary {
	t.Helper()
	newNamespace(t, ns)
	p := scenarios[scenario](ns)
	if change != nil {
		change(p)
	}
	rebase(p)
	return writeCanary(t, p)
}

func readCanary(t *testing.T, cd *flaggerv1beta1.Canary) *flaggerv1beta1.Canary {
	t.Helper()
	cur := &flaggerv1beta1.Canary{}
	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(cd), cur); err != nil {
		t.Fatal(err)
	}
	return cur
}

// TestRequests_WriteTheContractAnnotationsInOnePatch: each request writes
// the four annotations at once, named after the caller that the
// SelfSubjectReview API reports.
func TestRequests_WriteTheContractAnnotationsInOnePatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args     []string
		scenario string
		want     string
	}{
		{[]string{"promote", "--reason", "verified by hand"}, "progressing-failed-check", "promote"},
		{[]string{"promote", "--full"}, "waiting-promotion", "promote-full"},
		{[]string{"abort", "--reason", "errors in checkout"}, "progressing-failed-check", "abort"},
		{[]string{"retry"}, "failed-threshold", "retry"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			cd := playedCanary(t, "request-"+tc.want, tc.scenario, nil)
			var list flaggerv1beta1.CanaryList
			w, err := watcher.Watch(t.Context(), &list, client.InNamespace(cd.Namespace),
				&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: cd.ResourceVersion}})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Stop()

			args := append([]string{tc.args[0], "podinfo", "-n", cd.Namespace, "--wait=false"}, tc.args[1:]...)
			r := sluice(t, args...).ok(t)
			if !strings.HasPrefix(r.out, tc.want+" requested for canary "+cd.Namespace+"/podinfo (id ") {
				t.Errorf("output = %q", r.out)
			}
			reason := ""
			if i := strings.Index(strings.Join(tc.args, " "), "--reason "); i >= 0 {
				reason = strings.Join(tc.args, " ")[i+len("--reason "):]
			}
			select {
			case ev := <-w.ResultChan():
				got := ev.Object.(*flaggerv1beta1.Canary).Annotations
				if ev.Type != watch.Modified || got[annotationRequest] != tc.want || !requestIDPattern.MatchString(got[annotationRequestID]) ||
					got[annotationRequestBy] != "sluice-test" || got[annotationRequestReason] != reason {
					t.Errorf("the first change of the Canary is %s with annotations %v, want all four request annotations at once", ev.Type, got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no change of the Canary seen")
			}
		})
	}
}

// TestRequests_AreRefusedWhereTheyMakeNoSense: a request that the phase
// rules out fails with one line and writes nothing.
func TestRequests_AreRefusedWhereTheyMakeNoSense(t *testing.T) {
	t.Parallel()
	pending := func(p *player) {
		p.annotations = map[string]string{annotationRequest: "abort", annotationRequestID: "2026-07-01T11:59:00Z-abcdef", annotationRequestBy: "jane"}
	}
	for _, tc := range []struct {
		name, verb, scenario string
		change               func(*player)
		want                 string
	}{
		{"promote-succeeded", "promote", "succeeded", nil, "it is Succeeded: its last revision is already promoted"},
		{"promote-failed", "promote", "failed-threshold", nil, "it is Failed: its revision was rolled back; analyse it again with kubectl sluice retry"},
		{"promote-promoting", "promote", "promoting", nil, "it is Promoting: it is already being promoted"},
		{"abort-succeeded", "abort", "succeeded", nil, "it is Succeeded: only a running analysis can be aborted"},
		{"abort-waiting", "abort", "waiting-slot", nil, "it is Waiting: only a running analysis can be aborted"},
		{"abort-failed", "abort", "failed-threshold", nil, "it is Failed: it is already rolled back"},
		{"retry-progressing", "retry", "progressing-failed-check", nil, "it is Progressing: only a Failed revision can be retried"},
		{"retry-succeeded", "retry", "succeeded", nil, "it is Succeeded: only a Failed revision can be retried"},
		{"pending", "promote", "progressing-failed-check", pending, "a abort request (id 2026-07-01T11:59:00Z-abcdef) by jane is still waiting for the controller"},
		{"paused", "abort", "progressing-failed-check", func(p *player) { p.spec.Suspend = true }, "it is paused (spec.suspend)"},
		{"invalid", "promote", "invalid-target", nil, "Sluice cannot act on it (TargetNotFound)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cd := playedCanary(t, "refuse-"+tc.name, tc.scenario, tc.change)
			sluice(t, tc.verb, "podinfo", "-n", cd.Namespace).failsWith(t, fmt.Sprintf("cannot %s canary %s/podinfo: %s", tc.verb, cd.Namespace, tc.want))
			if got := readCanary(t, cd); got.ResourceVersion != cd.ResourceVersion {
				t.Errorf("a refused request changed the Canary: annotations %v", got.Annotations)
			}
		})
	}
}

// TestRequests_RecheckThePhaseWhenTheCanaryChanged: the patch carries the
// resourceVersion of the copy that was checked; when the controller moved
// on in between, the request is checked again against the new phase.
func TestRequests_RecheckThePhaseWhenTheCanaryChanged(t *testing.T) {
	t.Parallel()
	stale := playedCanary(t, "request-conflict", "progressing-failed-check", nil)
	cur := readCanary(t, stale)
	cur.Status.Phase = flaggerv1beta1.CanaryPhaseSucceeded
	if err := env.Client.Status().Update(t.Context(), cur); err != nil {
		t.Fatal(err)
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, &stale.Namespace
	a := &app{flags: flags}
	cs, err := a.connect()
	if err != nil {
		t.Fatal(err)
	}
	_, err = writeRequest(t.Context(), cs, stale, requestAbort, "abort", "id", "", "me")
	if err == nil || !strings.Contains(err.Error(), "it is Succeeded") {
		t.Fatalf("abort of a stale Progressing copy of a Succeeded Canary: error = %v, want the Succeeded refusal", err)
	}
	if got := readCanary(t, stale); got.Annotations[annotationRequest] != "" {
		t.Errorf("the request was written over a newer Canary: %v", got.Annotations)
	}
}

// TestRequests_WaitForTheControllerAndPrintTheOutcome plays the
// controller's side of the contract: it takes the request, records it in
// an event and removes the annotations; the command then prints the phase
// and the events since the request.
func TestRequests_WaitForTheControllerAndPrintTheOutcome(t *testing.T) {
	t.Parallel()
	cd := playedCanary(t, "request-wait", "progressing-failed-check", nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	taken := make(chan map[string]string, 1)
	go func() { taken <- honourOnce(ctx, t, cd) }()

	r := sluice(t, "abort", "podinfo", "-n", cd.Namespace, "--reason", "errors in checkout", "--timeout", "20s").ok(t)
	got := <-taken
	if got[annotationRequest] != "abort" || got[annotationRequestReason] != "errors in checkout" {
		t.Errorf("the controller saw %v", got)
	}
	want := fmt.Sprintf("The controller took the request: canary %s/podinfo is Failed: Rolling back podinfo: aborted by sluice-test: errors in checkout\n"+
		"  Warning Rolling back podinfo: aborted by sluice-test: errors in checkout\n", cd.Namespace)
	if !strings.HasSuffix(r.out, want) {
		t.Errorf("output:\n%s\nwant it to end with:\n%s", r.out, want)
	}
}

// honourOnce waits for a request on the Canary and does what the
// controller does with an abort: rolls back, removes the annotations and
// emits an event naming who asked and why, a moment later, as the
// recorder sends events asynchronously. It returns the annotations it
// found.
func honourOnce(ctx context.Context, t *testing.T, cd *flaggerv1beta1.Canary) map[string]string {
	var found map[string]string
	for found == nil && ctx.Err() == nil {
		cur := &flaggerv1beta1.Canary{}
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cd), cur); err == nil && cur.Annotations[annotationRequest] != "" {
			found = cur.Annotations
			msg := fmt.Sprintf("Rolling back podinfo: aborted by %s: %s", found[annotationRequestBy], found[annotationRequestReason])
			cur.Status.Phase = flaggerv1beta1.CanaryPhaseFailed
			for i := range cur.Status.Conditions {
				if cur.Status.Conditions[i].Type == flaggerv1beta1.PromotedType {
					cur.Status.Conditions[i].Message = msg
				}
			}
			if err := env.Client.Status().Update(ctx, cur); err != nil {
				t.Errorf("writing the status: %v", err)
			}
			patch := []byte(`{"metadata":{"annotations":{"sluice.dev/request":null,"sluice.dev/request-id":null,"sluice.dev/request-reason":null,"sluice.dev/request-by":null}}}`)
			if err := env.Client.Patch(ctx, cur, client.RawPatch("application/merge-patch+json", patch)); err != nil {
				t.Errorf("removing the request: %v", err)
			}
			// The recorder sends events asynchronously, after the writes.
			time.Sleep(300 * time.Millisecond)
			ev := &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: "podinfo.abort", Namespace: cd.Namespace},
				InvolvedObject: corev1.ObjectReference{Kind: "Canary", APIVersion: flaggerv1beta1.GroupVersion.String(), Namespace: cd.Namespace, Name: cd.Name, UID: cd.UID},
				Reason:         "Synced", Message: msg, Type: corev1.EventTypeWarning, Count: 1,
				FirstTimestamp: metav1.NewTime(testNow), LastTimestamp: metav1.NewTime(testNow), Source: corev1.EventSource{Component: "sluice"},
			}
			if err := env.Client.Create(ctx, ev); err != nil {
				t.Errorf("creating the event: %v", err)
			}
			return found
		}
		time.Sleep(20 * time.Millisecond)
	}
	return found
}

// TestRequests_TimeOutWithoutAController: with no controller, --wait ends
// after --timeout with one line, and the request stays on the Canary.
func TestRequests_TimeOutWithoutAController(t *testing.T) {
	t.Parallel()
	cd := playedCanary(t, "request-timeout", "progressing-failed-check", nil)
	sluice(t, "promote", "podinfo", "-n", cd.Namespace, "--timeout", "1s").
		failsWith(t, "the controller has not taken request 2026-07-01T12:00:00Z-")
	if got := readCanary(t, cd); got.Annotations[annotationRequest] != "promote" {
		t.Errorf("the request should stay on the Canary: %v", got.Annotations)
	}
}
