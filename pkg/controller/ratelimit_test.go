package controller

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
)

// A Canary whose reconciles keep failing is retried with a growing delay
// that never exceeds maxErrorBackoff (controller-runtime's default grows to
// 1000 s), and a success starts it again from a few milliseconds; other
// Canaries are not held back by its failures. Many failing at once share
// an overall budget: past its burst, retries are spread out.
func TestRateLimiter_CapsTheBackoffAndSharesABudget(t *testing.T) {
	rl := rateLimiter()
	a := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "a"}}
	b := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: "b"}}

	if d := rl.When(a); d > 10*time.Millisecond {
		t.Fatalf("first retry after %s, want a few milliseconds", d)
	}
	var last time.Duration
	for range 40 {
		last = rl.When(a)
		if last > maxErrorBackoff {
			t.Fatalf("retry after %s, want at most %s", last, maxErrorBackoff)
		}
	}
	if last != maxErrorBackoff {
		t.Errorf("after 40 failures the retry comes after %s, want the cap %s", last, maxErrorBackoff)
	}
	if d := rl.When(b); d > 10*time.Millisecond {
		t.Errorf("another Canary's first retry after %s: the failures of one held it back", d)
	}
	rl.Forget(a)
	if d := rl.When(a); d > 10*time.Millisecond {
		t.Errorf("after a success the retry comes after %s, want a few milliseconds again", d)
	}

	// The overall bucket: a burst of 300, then 50 per second.
	fresh := rateLimiter()
	var worst time.Duration
	for i := range 400 {
		r := reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("c-%d", i)}}
		worst = max(worst, fresh.When(r))
	}
	if worst < time.Second || worst > 3*time.Second {
		t.Errorf("400 first retries at once: the last waits %s, want about (400-300)/50 = 2 s", worst)
	}
}
