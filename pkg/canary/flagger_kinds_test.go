package canary

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// flaggerEnum returns the enum of a Canary field in Flagger v1.44.0's CRD,
// from the field list generated from it (api/v1beta1/testdata).
func flaggerEnum(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "api", "v1beta1", "testdata", "flagger-fields.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 4 || fields[0] != "canaries" || fields[1] != path {
			continue
		}
		for _, f := range fields[3:] {
			if values, ok := strings.CutPrefix(f, "enum="); ok {
				return strings.Split(values, "|")
			}
		}
	}
	t.Fatalf("no enum for %s in Flagger's fields", path)
	return nil
}

// TestKinds_CoverEveryTargetAndAutoscalerFlaggerAccepts fails when a kind
// Flagger v1.44.0 admits in spec.targetRef or spec.autoscalerRef has no
// implementation here, so that it would be reported unsupported.
func TestKinds_CoverEveryTargetAndAutoscalerFlaggerAccepts(t *testing.T) {
	t.Parallel()
	var targets []string
	for k := range kinds {
		targets = append(targets, k.kind)
	}
	for _, kind := range flaggerEnum(t, "spec.targetRef.kind") {
		if !slices.Contains(targets, kind) {
			t.Errorf("targetRef kind %s: no Workload; Flagger v1.44.0 accepts it", kind)
		}
	}
	// Flagger tells a Service's two meanings apart by apiVersion.
	for _, k := range []targetKind{{"v1", "Service"}, {"serving.knative.dev/v1", "Service"}} {
		if kinds[k] == nil {
			t.Errorf("targetRef %s %s: no Workload", k.apiVersion, k.kind)
		}
	}
	for _, kind := range flaggerEnum(t, "spec.autoscalerRef.kind") {
		if autoscalers[kind] == nil {
			t.Errorf("autoscalerRef kind %s: no autoscaler; Flagger v1.44.0 accepts it", kind)
		}
	}
}
