//go:build e2e

package scenarios

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// The guarantees of the trust issue that need what only a real control
// plane does: the garbage collector deleting what a Canary owns, the
// Deployment controller rolling pods out, routing objects that someone
// else edits.

// gone reports whether the named object no longer exists.
func (s *scenario) gone(name string, o client.Object) (bool, error) {
	err := s.get(name, o)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

// TestIstio_DeletionWithRevertOnDeletionLeavesAWorkingApp: deleting a
// Canary with revertOnDeletion leaves the app served by its own
// Deployment: the apex Service outlives the Canary and selects the
// target's pods, the target runs the primary's replicas, and what the
// Canary created besides (primary, -primary/-canary Services, routing
// objects) is deleted by the garbage collector.
func TestIstio_DeletionWithRevertOnDeletionLeavesAWorkingApp(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	cd := canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{StepWeight: ptr.To[int32](50)})
	cd.Spec.RevertOnDeletion = true
	s.initialize(cd)
	s.eventually(30*time.Second, "the target parked", func() (bool, error) {
		d := &appsv1.Deployment{}
		return s.get(app, d) == nil && ptr.Deref(d.Spec.Replicas, -1) == 0, nil
	})
	if err := s.c.Delete(s.t.Context(), cd); err != nil {
		t.Fatal(err)
	}
	s.eventually(90*time.Second, "the Canary and what it owns to be gone", func() (bool, error) {
		for _, o := range []struct {
			name string
			obj  client.Object
		}{
			{app, &flaggerv1beta1.Canary{}},
			{app + "-primary", &appsv1.Deployment{}},
			{app + "-primary", &corev1.Service{}},
			{app + "-canary", &corev1.Service{}},
			{app, &networkingv1.VirtualService{}},
			{app + "-canary", &networkingv1.DestinationRule{}},
		} {
			if ok, err := s.gone(o.name, o.obj); !ok || err != nil {
				return false, fmt.Errorf("%T %s still exists (%w)", o.obj, o.name, err)
			}
		}
		return true, nil
	})
	svc := &corev1.Service{}
	if err := s.get(app, svc); err != nil {
		t.Fatalf("the apex Service is gone with the Canary: %v", err)
	}
	if !maps.Equal(svc.Spec.Selector, map[string]string{"app": app}) || len(svc.OwnerReferences) != 0 {
		t.Errorf("apex Service selects %v with owners %v; want the target's pods and no owner", svc.Spec.Selector, svc.OwnerReferences)
	}
	s.eventually(60*time.Second, "the target serving with the primary's replicas", func() (bool, error) {
		d := &appsv1.Deployment{}
		if err := s.get(app, d); err != nil {
			return false, err
		}
		return ptr.Deref(d.Spec.Replicas, 0) == 2 && d.Status.AvailableReplicas == 2, nil
	})
}

// TestIstio_DeletionWithoutRevertBehavesAsFlagger: without
// revertOnDeletion, everything the Canary owns is deleted with it, the apex
// Service included, as Flagger does.
func TestIstio_DeletionWithoutRevertBehavesAsFlagger(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	cd := canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{StepWeight: ptr.To[int32](50)})
	s.initialize(cd)
	if err := s.c.Delete(s.t.Context(), cd); err != nil {
		t.Fatal(err)
	}
	s.eventually(90*time.Second, "the apex Service and the primary to be garbage collected", func() (bool, error) {
		svcGone, err := s.gone(app, &corev1.Service{})
		if err != nil {
			return false, err
		}
		primaryGone, err := s.gone(app+"-primary", &appsv1.Deployment{})
		return svcGone && primaryGone, err
	})
}

// TestIstio_RestoresDriftedRoutingObjects: a host added to the
// VirtualService by hand and a deleted DestinationRule are put back within
// seconds, with an event saying what was restored.
func TestIstio_RestoresDriftedRoutingObjects(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	s.initialize(canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{StepWeight: ptr.To[int32](50)}))
	vs := &networkingv1.VirtualService{}
	s.eventually(30*time.Second, "the VirtualService", func() (bool, error) { return s.get(app, vs) == nil, nil })
	want := slices.Clone(vs.Spec.Hosts)

	before := vs.DeepCopy()
	vs.Spec.Hosts = append(vs.Spec.Hosts, "hijacked.example.com")
	if err := s.c.Patch(s.t.Context(), vs, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	dr := &networkingv1.DestinationRule{}
	if err := s.get(app+"-canary", dr); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Delete(s.t.Context(), dr); err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	s.eventually(30*time.Second, "the VirtualService's hosts and the canary DestinationRule restored", func() (bool, error) {
		got := &networkingv1.VirtualService{}
		if err := s.get(app, got); err != nil {
			return false, err
		}
		dr := &networkingv1.DestinationRule{}
		return slices.Equal(got.Spec.Hosts, want) && s.get(app+"-canary", dr) == nil, nil
	})
	s.logf("drift restored in %s", time.Since(begin).Round(100*time.Millisecond))
	s.eventually(30*time.Second, "an event saying what was restored", func() (bool, error) {
		var events corev1.EventList
		if err := s.c.List(s.t.Context(), &events, client.InNamespace(s.ns)); err != nil {
			return false, err
		}
		for _, e := range events.Items {
			if strings.Contains(e.Message, "Restored VirtualService") || strings.Contains(e.Message, "Restored DestinationRule") {
				return true, nil
			}
		}
		return false, nil
	})
}

// TestKubernetes_AnUnreadyPrimaryHaltsTheAnalysis: while the primary's
// rollout cannot finish (its new pods cannot be scheduled), no analysis
// step runs, and the release fails at the progress deadline naming the
// primary; the primary never receives the new revision.
func TestKubernetes_AnUnreadyPrimaryHaltsTheAnalysis(t *testing.T) {
	t.Parallel()
	s := newScenario(t, false)
	cd := canaryFor(flaggerv1beta1.ProviderKubernetes, &flaggerv1beta1.CanaryAnalysis{Iterations: ptr.To[int32](2)})
	cd.Spec.ProgressDeadlineSeconds = ptr.To[int32](30)
	s.initialize(cd)

	// Someone breaks the primary: its new pods need a node that no one has.
	primary := &appsv1.Deployment{}
	if err := s.get(app+"-primary", primary); err != nil {
		t.Fatal(err)
	}
	before := primary.DeepCopy()
	primary.Spec.Template.Spec.NodeSelector = map[string]string{"sluice.dev/no-such-node": "true"}
	if err := s.c.Patch(s.t.Context(), primary, client.MergeFrom(before)); err != nil {
		t.Fatal(err)
	}
	s.release("6.1.0", 0)
	s.waitPhase(flaggerv1beta1.CanaryPhaseFailed, 2*time.Minute, func(cd *flaggerv1beta1.Canary) error {
		if cd.Status.Iterations > 0 || cd.Status.CanaryWeight > 0 {
			return fmt.Errorf("%w: a step ran while the primary was not ready: %+v", errStop, cd.Status)
		}
		return nil
	})
	done, err := s.canary()
	if err != nil {
		t.Fatal(err)
	}
	if msg := promotedMessage(done); !strings.Contains(msg, "the primary is not ready after 30s") {
		t.Errorf("Promoted condition says %q, want the unready primary named", msg)
	}
	if got := s.primaryImage(); got != image+"6.0.0" {
		t.Errorf("primary image = %s, want the old one", got)
	}
}
