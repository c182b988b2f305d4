package router_test

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/sluicedev/sluice/pkg/problem"
	"github.com/sluicedev/sluice/pkg/router"
)

// setData returns a ConfigMap named podinfo-config in ns and a mutate
// function that sets the key "managed" to value.
func setData(ns, value string) (*corev1.ConfigMap, router.MutateFunc) {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "podinfo-config", Namespace: ns}}
	return cm, func() error {
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data["managed"] = value
		return nil
	}
}

func TestEnsure_CreatesThenPatchesOnlyWhatChanged(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	c, writes := countingClient(t)
	ctx := testContext(t)
	for _, step := range []struct {
		name       string
		value      string
		someone    string // a merge patch applied by someone else before the step
		want       controllerutil.OperationResult
		wantWrites int32
	}{
		{name: "creates", value: "1", want: controllerutil.OperationResultCreated, wantWrites: 1},
		{name: "leaves an equal object alone", value: "1", want: controllerutil.OperationResultNone},
		{name: "patches a change", value: "2", want: controllerutil.OperationResultUpdated, wantWrites: 1},
		{
			name: "keeps what others set", value: "2", want: controllerutil.OperationResultNone,
			someone: `{"data":{"theirs":"x"},"metadata":{"annotations":{"theirs":"y"}}}`,
		},
		{name: "restores its own field", value: "2", someone: `{"data":{"managed":"9"}}`, want: controllerutil.OperationResultUpdated, wantWrites: 1},
	} {
		if step.someone != "" {
			cm, _ := setData(ns, "")
			patchAs(t, cm, step.someone)
		}
		writes.Store(0)
		cm, mutate := setData(ns, step.value)
		got, err := router.Ensure(ctx, c, cd, cm, mutate)
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if got != step.want || writes.Load() != step.wantWrites {
			t.Errorf("%s: result %s with %d writes, want %s with %d", step.name, got, writes.Load(), step.want, step.wantWrites)
		}
		if cm.Data["managed"] != step.value || !router.IsControlledBy(cm, cd) {
			t.Errorf("%s: got data %v, owners %v", step.name, cm.Data, cm.OwnerReferences)
		}
	}
	cm, _ := setData(ns, "")
	if err := env.Client.Get(t.Context(), objectKey(cm), cm); err != nil {
		t.Fatal(err)
	}
	if cm.Data["theirs"] != "x" || cm.Annotations["theirs"] != "y" {
		t.Errorf("fields set by someone else were lost: data %v, annotations %v", cm.Data, cm.Annotations)
	}
}

func TestEnsure_EditsOnlyWhatTheCanaryControls(t *testing.T) {
	t.Parallel()
	other := metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "other", UID: "other-uid", Controller: ptr.To(true)}
	bystander := metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap", Name: "bystander", UID: "bystander-uid"}
	for _, tc := range []struct {
		name    string
		owners  []metav1.OwnerReference
		wantErr string
	}{
		{name: "refuses an object controlled by another", owners: []metav1.OwnerReference{other}, wantErr: "is controlled by Deployment other (uid other-uid)"},
		{name: "refuses an object without controller", owners: []metav1.OwnerReference{bystander}, wantErr: "has no controller"},
		{name: "refuses an orphan", wantErr: "has no controller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t)
			cd := newCanary(t, ns, nil)
			existing, _ := setData(ns, "")
			existing.OwnerReferences = tc.owners
			existing.Data = map[string]string{"managed": "theirs"}
			if err := env.Client.Create(t.Context(), existing); err != nil {
				t.Fatal(err)
			}

			cm, mutate := setData(ns, "sluice")
			_, err := router.Ensure(testContext(t), env.Client, cd, cm, mutate)
			if tc.wantErr != "" {
				if !problem.Is(err, problem.NotOwned) || !strings.Contains(err.Error(), "ConfigMap "+ns+"/podinfo-config "+tc.wantErr) {
					t.Fatalf("error = %v; want a NotOwnedError saying it %s", err, tc.wantErr)
				}
				got, _ := setData(ns, "")
				if err := env.Client.Get(t.Context(), objectKey(got), got); err != nil {
					t.Fatal(err)
				}
				if got.ResourceVersion != existing.ResourceVersion {
					t.Errorf("the refused object was written: %v", got.Data)
				}
				return
			}
			t.Fatalf("no case without an error: %v", err)
		})
	}
}

// An object Flagger created for the same Canary (its controller reference
// is the Canary, its labels and annotations are Flagger's) is adopted in
// place: same UID, Flagger's metadata kept, Sluice's fields set.
func TestEnsure_AdoptsWhatFlaggerCreatedForTheSameCanaryInPlace(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	flaggers, _ := setData(ns, "")
	flaggers.OwnerReferences = []metav1.OwnerReference{{APIVersion: "flagger.app/v1beta1", Kind: "Canary", Name: cd.Name, UID: cd.UID,
		Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	flaggers.Labels = map[string]string{"app.kubernetes.io/managed-by": "flagger"}
	flaggers.Data = map[string]string{"managed": "flagger"}
	if err := env.Client.Create(t.Context(), flaggers); err != nil {
		t.Fatal(err)
	}
	cm, mutate := setData(ns, "sluice")
	res, err := router.Ensure(testContext(t), env.Client, cd, cm, mutate)
	if err != nil || res != controllerutil.OperationResultUpdated {
		t.Fatalf("Ensure = %s, %v; want an update in place", res, err)
	}
	if cm.UID != flaggers.UID || cm.Data["managed"] != "sluice" || cm.Labels["app.kubernetes.io/managed-by"] != "flagger" {
		t.Errorf("adopted object: uid %s (was %s), data %v, labels %v", cm.UID, flaggers.UID, cm.Data, cm.Labels)
	}
}

func TestEnsure_RefusesObjectsOutsideTheCanaryNamespace(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	cm, mutate := setData(newNamespace(t), "1")
	_, err := router.Ensure(testContext(t), env.Client, cd, cm, mutate)
	if err == nil || !strings.Contains(err.Error(), "not in the namespace of Canary") {
		t.Fatalf("error = %v, want one about the namespace", err)
	}
}

func TestEnsure_RefusesMutateThatRenames(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	cm, _ := setData(ns, "")
	_, err := router.Ensure(testContext(t), env.Client, cd, cm, func() error { cm.Name = "elsewhere"; return nil })
	if err == nil || !strings.Contains(err.Error(), "changed its name") {
		t.Fatalf("error = %v, want one about the name", err)
	}
}

// TestEnsure_DoesNotCreateTwiceWithinAReconcileWhenTheCacheLags ensures
// the same object twice in one reconcile (WithChanges) through a client
// whose reads, like a cache that has not seen the create yet, find
// nothing: the second call must not send a create the API server refuses.
func TestEnsure_DoesNotCreateTwiceWithinAReconcileWhenTheCacheLags(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t)
	cd := newCanary(t, ns, nil)
	counting, writes := countingClient(t)
	lagging := interceptor.NewClient(counting.(client.WithWatch), interceptor.Funcs{
		Get: func(_ context.Context, _ client.WithWatch, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
			return apierrors.NewNotFound(corev1.Resource("configmaps"), key.Name)
		},
	})
	ctx, changes := router.WithChanges(testContext(t))
	for i, want := range []controllerutil.OperationResult{controllerutil.OperationResultCreated, controllerutil.OperationResultNone} {
		cm, mutate := setData(ns, "1")
		got, err := router.Ensure(ctx, lagging, cd, cm, mutate)
		if err != nil {
			t.Fatalf("call %d: %v", i+1, err)
		}
		if got != want || cm.Data["managed"] != "1" {
			t.Errorf("call %d: %s with data %v, want %s", i+1, got, cm.Data, want)
		}
	}
	if writes.Load() != 1 || len(changes.List()) != 1 {
		t.Errorf("%d writes, changes %v; want the one create", writes.Load(), changes.List())
	}
}
