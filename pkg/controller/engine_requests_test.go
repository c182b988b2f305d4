package controller

import (
	"context"
	"fmt"
	"testing"

	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// request writes a request's annotations on the podinfo Canary, as
// kubectl sluice does.
func (h *harness) request(kind, id string) {
	h.t.Helper()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cd := h.canary("podinfo")
		patch := client.MergeFromWithOptions(cd.DeepCopy(), client.MergeFromWithOptimisticLock{})
		if cd.Annotations == nil {
			cd.Annotations = map[string]string{}
		}
		cd.Annotations[flaggerv1beta1.RequestAnnotation] = kind
		cd.Annotations[flaggerv1beta1.RequestIDAnnotation] = id
		cd.Annotations[flaggerv1beta1.RequestByAnnotation] = "alice"
		cd.Annotations[flaggerv1beta1.RequestReasonAnnotation] = "checked by hand"
		return h.c.Patch(context.Background(), cd, patch)
	})
	if err != nil {
		h.t.Fatal(err)
	}
}

// taken waits until the podinfo Canary records the request and its
// annotations are removed.
func (h *harness) taken(id string, outcome flaggerv1beta1.RequestOutcome) *flaggerv1beta1.Canary {
	h.t.Helper()
	var cd *flaggerv1beta1.Canary
	h.eventually("request "+id+" taken", func() (bool, string) {
		cd = h.canary("podinfo")
		lr := cd.Status.LastRequest
		return lr != nil && lr.ID == id && cd.Annotations[flaggerv1beta1.RequestIDAnnotation] == "",
			fmt.Sprintf("lastRequest %+v annotations %v", lr, cd.Annotations)
	})
	if cd.Status.LastRequest.Outcome != outcome || cd.Status.LastRequest.By != "alice" {
		h.t.Fatalf("request %s: %+v, want %s by alice", id, cd.Status.LastRequest, outcome)
	}
	return cd
}

func TestEngine_RequestsAreHonouredOnceThroughAnnotations(t *testing.T) {
	h := newHarness(t)
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Interval = "1h" // only requests move this release on
		cd.Spec.Analysis.Iterations = ptr.To[int32](5)
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)

	// Promoting a canary that has nothing to promote is refused.
	h.request("promote", "r1")
	h.taken("r1", flaggerv1beta1.RequestRefused)
	h.waitEvent("podinfo", "Request promote r1 by alice refused")

	// A release aborted by hand is rolled back at once.
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseProgressing)
	h.request("abort", "r2")
	cd := h.taken("r2", flaggerv1beta1.RequestHonoured)
	if cd.Status.Phase != flaggerv1beta1.CanaryPhaseFailed {
		t.Fatalf("phase after abort = %s, want Failed", cd.Status.Phase)
	}
	h.waitEvent("podinfo", "Rolling back podinfo: aborted by alice: checked by hand")

	// Retry analyses the failed revision again; promote --full ends it.
	h.request("retry", "r3")
	h.taken("r3", flaggerv1beta1.RequestHonoured)
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseProgressing)
	h.request("promote-full", "r4")
	h.taken("r4", flaggerv1beta1.RequestHonoured)
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)
	if img := h.deployment("podinfo-primary").Spec.Template.Spec.Containers[0].Image; img != "ghcr.io/example/podinfo:6.1.0" {
		t.Errorf("primary image = %s, want the promoted revision", img)
	}

	// The same request id again (written back by hand) is not taken twice.
	h.request("retry", "r4")
	h.eventually("the repeated id's annotations removed", func() (bool, string) {
		cd := h.canary("podinfo")
		return cd.Annotations[flaggerv1beta1.RequestIDAnnotation] == "", fmt.Sprint(cd.Annotations)
	})
	if cd := h.canary("podinfo"); cd.Status.Phase != flaggerv1beta1.CanaryPhaseSucceeded || cd.Status.LastRequest.Request != "promote-full" {
		t.Errorf("a repeated request id was taken again: phase %s, lastRequest %+v", cd.Status.Phase, cd.Status.LastRequest)
	}
}
