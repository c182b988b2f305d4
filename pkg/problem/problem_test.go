package problem

import (
	"fmt"
	"testing"
	"time"
)

func TestAs_FindsAProblemWrappedInAnError(t *testing.T) {
	err := fmt.Errorf("observing canary test/podinfo: %w", New(TargetNotFound, "Deployment %s not found", "podinfo"))
	p, ok := As(err)
	if !ok || p.Reason != TargetNotFound || p.Message != "Deployment podinfo not found" {
		t.Fatalf("As(%v) = %+v, %v", err, p, ok)
	}
	if !Is(err, TargetNotFound) || Is(err, NotOwned) {
		t.Fatalf("Is does not tell the reasons apart for %v", err)
	}
	if _, ok := As(fmt.Errorf("connection refused")); ok {
		t.Fatal("a plain error was read as a problem")
	}
}

func TestRetry_CopiesWithoutChangingTheOriginal(t *testing.T) {
	p := New(UnsupportedRouting, "no Gateway")
	q := p.Retry(time.Minute)
	if p.RetryAfter != 0 || q.RetryAfter != time.Minute || q.Message != p.Message {
		t.Fatalf("Retry changed the original or lost the message: %+v %+v", p, q)
	}
}
