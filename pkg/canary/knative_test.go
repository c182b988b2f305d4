package canary_test

import (
	"errors"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/problem"
)

// knativeCanary creates the Knative Service podinfo and a Canary for it.
func knativeCanary(f *fixture) *flaggerv1beta1.Canary {
	f.t.Helper()
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "serving.knative.dev/v1", "kind": "Service",
		"metadata": map[string]any{"name": "podinfo", "namespace": f.ns},
		"spec": map[string]any{"template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"image": "ghcr.io/stefanprodan/podinfo:6.0.0"},
		}}}},
	}}
	f.must(k8s.Create(f.ctx(), u))
	return f.canary("Service", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider, cd.Spec.TargetRef.APIVersion = flaggerv1beta1.ProviderKnative, "serving.knative.dev/v1"
	})
}

// knativeCreates plays Knative's controller creating revision of the
// Service podinfo, with the given Ready condition status ("" for none).
func knativeCreates(f *fixture, revision, ready string) {
	f.t.Helper()
	rev := &knativev1.Revision{ObjectMeta: metav1.ObjectMeta{Name: revision, Namespace: f.ns}}
	f.must(k8s.Create(f.ctx(), rev))
	if ready != "" {
		knativeRevisionReady(f, revision, ready)
	}
	svc := f.get("podinfo", &knativev1.Service{}).(*knativev1.Service)
	svc.Status.ObservedGeneration = svc.Generation
	svc.Status.LatestCreatedRevisionName = revision
	f.must(k8s.Status().Update(f.ctx(), svc))
}

// knativeRevisionReady sets the Ready condition of a revision.
func knativeRevisionReady(f *fixture, revision, status string) {
	f.t.Helper()
	rev := f.get(revision, &knativev1.Revision{}).(*knativev1.Revision)
	c := knativev1.Condition{Type: "Ready", Status: status}
	if status == "False" {
		c.Reason, c.Message = "ExitCode1", "Container failed with: panic"
	}
	rev.Status.Conditions = []knativev1.Condition{c}
	f.must(k8s.Status().Update(f.ctx(), rev))
}

func primaryRevision(f *fixture) string {
	return f.get("podinfo", &knativev1.Service{}).(*knativev1.Service).Annotations[knativev1.PrimaryRevisionAnnotation]
}

func TestKnative_PrimaryIsTheAnnotatedRevisionAndPromotionMovesIt(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	cd := knativeCanary(f)
	w := f.workload(cd)

	// Before Knative created a revision there is nothing to name.
	f.must(w.EnsurePrimary(f.ctx(), cd))
	st := f.observe(w, cd)
	if st.Primary.Exists || st.Target.Exists || !strings.Contains(st.Primary.Message, "no flagger.app/primary-revision annotation yet") {
		t.Errorf("before a revision: %+v, want neither primary nor target, and why", st)
	}
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes before a revision exists, want none", n)
	}

	knativeCreates(f, "podinfo-00001", "True")
	f.must(w.EnsurePrimary(f.ctx(), cd))
	if got := primaryRevision(f); got != "podinfo-00001" {
		t.Fatalf("primary revision = %q, want podinfo-00001", got)
	}
	st = f.observe(w, cd)
	if !st.OwnServices || st.Revision != "podinfo-00001" || !st.Primary.Ready || st.Primary.Revision != "podinfo-00001" || !st.Target.Ready {
		t.Errorf("initialized: %+v, want own Services, both on the ready podinfo-00001", st)
	}

	knativeCreates(f, "podinfo-00002", "Unknown")
	f.must(w.EnsurePrimary(f.ctx(), cd))
	st = f.observe(w, cd)
	if st.Revision != "podinfo-00002" || st.Target.Ready || st.Target.Stalled || !strings.Contains(st.Target.Message, "podinfo-00002") ||
		st.Primary.Revision != "podinfo-00001" || !st.Primary.Ready {
		t.Errorf("new revision starting: %+v, want the target waiting for podinfo-00002 and the primary on podinfo-00001", st)
	}
	knativeRevisionReady(f, "podinfo-00002", "True")
	if st = f.observe(w, cd); !st.Target.Ready {
		t.Errorf("new revision ready: target %+v, want ready", st.Target)
	}

	if err := w.Promote(f.ctx(), cd, "podinfo-00001"); !errors.Is(err, canary.ErrRevisionChanged) {
		t.Errorf("promoting a revision that is not the latest: %v, want ErrRevisionChanged", err)
	}
	f.must(w.Promote(f.ctx(), cd, "podinfo-00002"))
	if got := primaryRevision(f); got != "podinfo-00002" {
		t.Errorf("after the promotion: primary revision = %q, want podinfo-00002", got)
	}
	f.writes.Store(0)
	f.must(w.Promote(f.ctx(), cd, "podinfo-00002"))
	for _, op := range []func() error{
		func() error { return w.ScaleTargetUp(f.ctx(), cd) },
		func() error { return w.ScaleTargetToZero(f.ctx(), cd) },
		func() error { return w.RestoreTarget(f.ctx(), cd) },
		func() error { return w.ScalePrimaryAtLeast(f.ctx(), cd, 10) },
		func() error { return w.SyncAutoscaler(f.ctx(), cd) },
	} {
		f.must(op())
	}
	if n := f.writes.Load(); n != 0 {
		t.Errorf("%d writes: Knative scales revisions itself, want none", n)
	}
}

func TestKnative_TargetReadiness(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	cd := knativeCanary(f)
	w := f.workload(cd)
	knativeCreates(f, "podinfo-00001", "True")
	f.must(w.EnsurePrimary(f.ctx(), cd))

	knativeCreates(f, "podinfo-00002", "False")
	st := f.observe(w, cd)
	if st.Target.Ready || !st.Target.Stalled || st.Target.Message != "Knative Revision podinfo-00002 failed: ExitCode1: Container failed with: panic" {
		t.Errorf("failed revision: %+v, want stalled with Knative's reason", st.Target)
	}

	// The router's writes to spec.traffic, which Knative has yet to
	// observe, do not make a ready revision wait.
	knativeRevisionReady(f, "podinfo-00002", "True")
	svc := f.get("podinfo", &knativev1.Service{}).(*knativev1.Service)
	svc.Status.ObservedGeneration = svc.Generation - 1
	f.must(k8s.Status().Update(f.ctx(), svc))
	if st = f.observe(w, cd); !st.Target.Ready {
		t.Errorf("ready revision, spec not observed yet: %+v, want ready", st.Target)
	}
}

func TestKnative_MissingServiceIsAProblem(t *testing.T) {
	t.Parallel()
	f := newFixture(t, defaultConfig())
	cd := f.canary("Service", func(cd *flaggerv1beta1.Canary) {
		cd.Spec.Provider, cd.Spec.TargetRef.APIVersion = flaggerv1beta1.ProviderKnative, "serving.knative.dev/v1"
	})
	_, err := f.workload(cd).Observe(f.ctx(), cd)
	p, ok := problem.As(err)
	if want := "Knative Service podinfo not found in namespace " + f.ns + ": create it or fix spec.targetRef"; !ok || p.Reason != problem.TargetNotFound || p.Message != want {
		t.Errorf("err = %v, want a problem %s %q", err, problem.TargetNotFound, want)
	}
}
