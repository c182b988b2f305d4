package controller

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// conflictingClient makes one status write of a Canary fail with a
// conflict, as when someone else wrote the Canary between the reconciler's
// read and its write: the first write that records the outcome of a step
// whose webhooks were claimed.
type conflictingClient struct {
	client.Client
	mu        sync.Mutex
	claimed   bool
	conflicts int
}

func (c *conflictingClient) Status() client.SubResourceWriter {
	return &conflictingStatus{SubResourceWriter: c.Client.Status(), c: c}
}

type conflictingStatus struct {
	client.SubResourceWriter
	c *conflictingClient
}

func (s *conflictingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	if cd, ok := obj.(*flaggerv1beta1.Canary); ok {
		s.c.mu.Lock()
		st := cd.Status
		switch {
		case st.StepStartedAt != nil:
			s.c.claimed = true
		case s.c.claimed && s.c.conflicts == 0 && st.Iterations >= 1:
			s.c.conflicts++
			s.c.mu.Unlock()
			return apierrors.NewConflict(schema.GroupResource{Group: "flagger.app", Resource: "canaries"}, cd.Name, fmt.Errorf("the object has been modified"))
		}
		s.c.mu.Unlock()
	}
	return s.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func TestEngine_AConflictingStatusWriteNeverCallsAStepsWebhooksTwice(t *testing.T) {
	hooks := &hookRecorder{}
	srv := httptest.NewServer(hooks)
	defer srv.Close()
	cc := &conflictingClient{}
	h := newHarness(t, func(r *CanaryReconciler) { cc.Client = r.Client; r.Client = cc })
	h.metrics.set(0)
	h.create(newDeployment("podinfo", 1), newCanary("podinfo", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Analysis.Iterations = ptr.To[int32](3)
		cd.Spec.Analysis.Webhooks = []flaggerv1beta1.CanaryWebhook{{Name: "load", URL: srv.URL + "/load"}}
	}))
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
	h.setImage("podinfo", "ghcr.io/example/podinfo:6.1.0")
	done := h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseSucceeded)

	if cc.conflicts != 1 {
		t.Fatalf("%d conflicts injected, want 1", cc.conflicts)
	}
	// Each step's webhook runs once; the step whose outcome was lost is
	// recorded as interrupted, not run again, and the next step runs an
	// interval later: one call per completed step plus the interrupted one.
	calls := hooks.got("/load")
	webhookChecks := 0
	for _, c := range done.Status.Analysis {
		if c.Kind == flaggerv1beta1.CheckWebhook && c.Name == "load" {
			webhookChecks++
		}
	}
	if len(calls) != webhookChecks+1 {
		t.Errorf("the rollout webhook was called %d times for %d recorded steps and one interrupted step", len(calls), webhookChecks)
	}
	h.waitEvent("podinfo", "was interrupted before its outcome was recorded")
	if done.Status.StepStartedAt != nil {
		t.Errorf("stepStartedAt = %v after the release, want it cleared", done.Status.StepStartedAt)
	}
}
