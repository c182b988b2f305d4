package v1beta1_test

import (
	"context"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

const compareCanary = `
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: istio
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service: {port: 9898}
  analysis:
    interval: 30s
    threshold: 5
    stepWeight: 10
    maxWeight: 50
    metrics:
    - name: request-duration
      interval: 30s
      onNoData: hold
      compare:
        against: primary
        direction: increase
        test: mannWhitney
        allowedIncrease: 1.1
        allowedDecrease: 0.9
        confidence: 0.99
        minSamples: 15
        critical: true
`

// TestCompare_ValidIsAcceptedAndReadBack creates a Canary with every compare
// field set, with strict field validation, and reads it into the Go type.
func TestCompare_ValidIsAcceptedAndReadBack(t *testing.T) {
	ns := newNamespace(t)
	u := decode(t, compareCanary)
	u.SetNamespace(ns)
	ctx := context.Background()
	if err := env.Client.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
		t.Fatal(err)
	}
	var cd flaggerv1beta1.Canary
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), &cd); err != nil {
		t.Fatal(err)
	}
	c := cd.Spec.Analysis.Metrics[0].Compare
	if c == nil || c.Against != flaggerv1beta1.CompareAgainstPrimary || c.Direction != flaggerv1beta1.CompareIncrease ||
		c.Test != flaggerv1beta1.CompareMannWhitney || *c.AllowedIncrease != 1.1 || *c.AllowedDecrease != 0.9 ||
		*c.Confidence != 0.99 || *c.MinSamples != 15 || !c.Critical {
		t.Fatalf("compare read back as %+v", c)
	}
}

// TestCompare_AgainstBaselineIsAcceptedWithABaseline creates a Canary that
// compares against the baseline it asks for, and reads both back.
func TestCompare_AgainstBaselineIsAcceptedWithABaseline(t *testing.T) {
	ns := newNamespace(t)
	u := decode(t, compareCanary)
	u.SetNamespace(ns)
	for _, m := range []func(*unstructured.Unstructured) error{
		setInList("baseline", []string{"spec", "analysis", "metrics"}, "compare", "against"),
		set(true, "spec", "analysis", "baseline"),
	} {
		if err := m(u); err != nil {
			t.Fatal(err)
		}
	}
	ctx := context.Background()
	if err := env.Client.Create(ctx, u, client.FieldValidation("Strict")); err != nil {
		t.Fatal(err)
	}
	var cd flaggerv1beta1.Canary
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(u), &cd); err != nil {
		t.Fatal(err)
	}
	if a := cd.Spec.Analysis; !a.Baseline || a.Metrics[0].Compare.Against != flaggerv1beta1.CompareAgainstBaseline {
		t.Fatalf("read back baseline %t, against %q", a.Baseline, a.Metrics[0].Compare.Against)
	}
}

// TestCompare_InvalidIsRejectedWithAClearMessage checks the enums, bounds
// and rules of the compare block.
func TestCompare_InvalidIsRejectedWithAClearMessage(t *testing.T) {
	metrics := []string{"spec", "analysis", "metrics"}
	type mutation = func(*unstructured.Unstructured) error
	tests := []struct {
		name   string
		mutate []mutation
		want   []string
	}{
		{"compare with a threshold", []mutation{setInList(map[string]any{"max": int64(500)}, metrics, "thresholdRange")},
			[]string{"a metric with compare is judged against the primary, not thresholds"}},
		{"compare with the deprecated threshold", []mutation{setInList(int64(500), metrics, "threshold")},
			[]string{"a metric with compare is judged against the primary, not thresholds"}},
		{"against a baseline without analysis.baseline", []mutation{setInList("baseline", metrics, "compare", "against")},
			[]string{"compare.against: baseline compares the canary with a <name>-baseline Deployment", "analysis.baseline: true"}},
		{"against a baseline with analysis.baseline false", []mutation{setInList("baseline", metrics, "compare", "against"), set(false, "spec", "analysis", "baseline")},
			[]string{"which Sluice runs only with analysis.baseline: true"}},
		{"against something else", []mutation{setInList("production", metrics, "compare", "against")},
			[]string{"compare.against", "Unsupported value"}},
		{"unknown direction", []mutation{setInList("up", metrics, "compare", "direction")},
			[]string{"compare.direction", "Unsupported value"}},
		{"unknown test", []mutation{setInList("tTest", metrics, "compare", "test")},
			[]string{"compare.test", "Unsupported value"}},
		{"confidence of 1", []mutation{setInList(int64(1), metrics, "compare", "confidence")},
			[]string{"compare.confidence", "less than 1"}},
		{"confidence of a half", []mutation{setInList(0.5, metrics, "compare", "confidence")},
			[]string{"compare.confidence", "greater than 0.5"}},
		{"allowed increase below 1", []mutation{setInList(0.9, metrics, "compare", "allowedIncrease")},
			[]string{"compare.allowedIncrease", "greater than or equal to 1"}},
		{"allowed decrease above 1", []mutation{setInList(1.2, metrics, "compare", "allowedDecrease")},
			[]string{"compare.allowedDecrease", "less than or equal to 1"}},
		{"allowed decrease of 0", []mutation{setInList(int64(0), metrics, "compare", "allowedDecrease")},
			[]string{"compare.allowedDecrease", "greater than 0"}},
		{"no samples", []mutation{setInList(int64(0), metrics, "compare", "minSamples")},
			[]string{"compare.minSamples", "greater than or equal to 1"}},
	}
	ns := newNamespace(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := decode(t, compareCanary)
			u.SetNamespace(ns)
			for _, m := range tt.mutate {
				if err := m(u); err != nil {
					t.Fatal(err)
				}
			}
			err := env.Client.Create(context.Background(), u)
			if err == nil {
				_ = env.Client.Delete(context.Background(), u)
				t.Fatal("the API server accepted the Canary")
			}
			if !apierrors.IsInvalid(err) {
				t.Fatalf("want an Invalid error, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
