package controller

import (
	"context"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Two reconciles that look at the cap at the same moment, before either's
// status write reached the cache, must not both take the last slot.
func TestAdmission_TheLastSlotIsHandedOutOnce(t *testing.T) {
	idle := func(name string) *flaggerv1beta1.Canary {
		return &flaggerv1beta1.Canary{ObjectMeta: metav1.ObjectMeta{Namespace: "test", Name: name},
			Status: flaggerv1beta1.CanaryStatus{Phase: flaggerv1beta1.CanaryPhaseSucceeded}}
	}
	one, two := idle("one"), idle("two")
	c := fake.NewClientBuilder().WithScheme(env.Scheme).WithObjects(one, two).Build()
	r := &CanaryReconciler{Client: c, MaxConcurrentCanaries: 1}

	var wg sync.WaitGroup
	admitted := make([]bool, 2)
	for i, cd := range []*flaggerv1beta1.Canary{one, two} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok, _, err := r.admitted(context.Background(), cd)
			if err != nil {
				t.Error(err)
			}
			admitted[i] = ok
		}()
	}
	wg.Wait()
	if admitted[0] == admitted[1] {
		t.Fatalf("admitted = %v with a cap of 1 and neither running yet: want exactly one", admitted)
	}
	// The slot is held until the decision takes its holder out of a
	// running phase, and then handed to the other.
	holder, other := one, two
	if admitted[1] {
		holder, other = two, one
	}
	r.admission.decided(client.ObjectKeyFromObject(holder), flaggerv1beta1.CanaryPhaseProgressing)
	if ok, _, _ := r.admitted(context.Background(), other); ok {
		t.Fatal("the other Canary was admitted while the holder analyses")
	}
	r.admission.decided(client.ObjectKeyFromObject(holder), flaggerv1beta1.CanaryPhaseSucceeded)
	if ok, msg, _ := r.admitted(context.Background(), other); !ok {
		t.Fatalf("the other Canary was not admitted once the slot was free: %s", msg)
	}
}
