package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func TestFlaggerDetector_SeesAHeldLeaseOrAReadyDeployment(t *testing.T) {
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "flagger-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	now := time.Now()
	f := &FlaggerDetector{Reader: env.Client, LeaseNamespaces: []string{ns.Name}, Now: func() time.Time { return now }}
	if live, err := f.Check(ctx); err != nil || live != "" {
		t.Fatalf("Check in an empty namespace = %q, %v", live, err)
	}

	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: FlaggerLease, Namespace: ns.Name}, Spec: coordinationv1.LeaseSpec{
		HolderIdentity: ptr.To("flagger-7d9f_1234"), LeaseDurationSeconds: ptr.To[int32](60), RenewTime: &metav1.MicroTime{Time: now.Add(-10 * time.Second)},
	}}
	if err := env.Client.Create(ctx, lease); err != nil {
		t.Fatal(err)
	}
	if live, err := f.Check(ctx); err != nil || !strings.Contains(live, "held by flagger-7d9f_1234") {
		t.Fatalf("Check with a held Lease = %q, %v", live, err)
	}
	now = now.Add(2 * time.Minute) // Flagger stopped: the Lease expired
	if live, err := f.Check(ctx); err != nil || live != "" {
		t.Fatalf("Check with an expired Lease = %q, %v", live, err)
	}

	d := newDeployment("flagger", 1)
	d.Namespace = ns.Name
	d.Labels = map[string]string{"app.kubernetes.io/name": "flagger"}
	d.Spec.Selector.MatchLabels = map[string]string{"app.kubernetes.io/name": "flagger"}
	d.Spec.Template.Labels = d.Labels
	if err := env.Client.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	d.Status = appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1, AvailableReplicas: 1}
	if err := env.Client.Status().Update(ctx, d); err != nil {
		t.Fatal(err)
	}
	if live, err := f.Check(ctx); err != nil || !strings.Contains(live, "Deployment "+ns.Name+"/flagger runs Flagger") {
		t.Fatalf("Check with a ready Flagger Deployment = %q, %v", live, err)
	}
}

func TestEngine_ACanaryIsLeftAloneWhileFlaggerRuns(t *testing.T) {
	det := &FlaggerDetector{Interval: 200 * time.Millisecond}
	live := "Flagger's Lease kube-system/flagger-leader-election is held by flagger-0 and was renewed 3s ago"
	det.live.Store(&live)
	h := newHarness(t, func(r *CanaryReconciler) { r.Flagger = det })
	h.create(newDeployment("podinfo", 1), newCanary("podinfo"))
	h.waitEvent("podinfo", "Sluice does not act on this Canary while Flagger runs")
	if cd := h.canary("podinfo"); cd.Status.Phase != "" || len(cd.Finalizers) != 0 {
		t.Errorf("the Canary was touched while Flagger runs: phase %q finalizers %v", cd.Status.Phase, cd.Finalizers)
	}
	var list appsv1.DeploymentList
	if err := h.c.List(context.Background(), &list); err == nil {
		for _, d := range list.Items {
			if d.Namespace == h.ns && d.Name == "podinfo-primary" {
				t.Fatal("a primary was created while Flagger runs")
			}
		}
	}
	// Flagger stops: the Canary is taken up at the next look.
	none := ""
	det.live.Store(&none)
	h.waitPhase("podinfo", flaggerv1beta1.CanaryPhaseInitialized)
}

func TestStatusFieldsKept_RecognisesSluicesCRD(t *testing.T) {
	kept, msg, err := StatusFieldsKept(context.Background(), env.Client)
	if err != nil || !kept || msg != "" {
		t.Fatalf("StatusFieldsKept on Sluice's CRD = %v, %q, %v", kept, msg, err)
	}
}

// With Flagger's CRD the API server drops Sluice's status fields; the
// memory puts them back, so deadlines and step times still hold.
func TestStatusMemory_PutsBackWhatTheAPIServerDropped(t *testing.T) {
	var m statusMemory
	key := client.ObjectKey{Namespace: "test", Name: "podinfo"}
	since := metav1.NewTime(time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC))
	written := flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseProgressing, WaitingSince: &since, LastAnalysisTime: &since, ObservedGeneration: 3,
		Analysis: []flaggerv1beta1.CanaryCheckResult{{Name: "m", Passed: true}}}
	m.store(key, written)
	read := flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseProgressing} // what Flagger's schema kept
	m.fill(key, &read)
	if read.WaitingSince == nil || !read.WaitingSince.Equal(&since) || read.LastAnalysisTime == nil || read.ObservedGeneration != 3 || len(read.Analysis) != 1 {
		t.Errorf("filled status = %+v, want the dropped fields back", read)
	}
	m.forget(key)
	fresh := flaggerv1beta1.CanaryStatus{}
	m.fill(key, &fresh)
	if fresh.WaitingSince != nil {
		t.Error("a forgotten Canary's fields came back")
	}
}
