package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestRender_FlaggerExampleTemplates renders every MetricTemplate of the
// Flagger-shaped examples in api/v1beta1/testdata/compat for a sample
// Canary: each must render without error, with every variable replaced.
func TestRender_FlaggerExampleTemplates(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("..", "..", "api", "v1beta1", "testdata", "compat", "*.yaml"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	cd := &flaggerv1beta1.Canary{}
	cd.Name, cd.Namespace = "podinfo", "test"
	cd.Spec.TargetRef = flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"}
	metric := flaggerv1beta1.CanaryMetric{Name: "example", Interval: "1m", TemplateVariables: map[string]string{"direction": "inbound"}}
	rendered := 0
	for _, path := range paths {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v", path, err)
			}
			var mt flaggerv1beta1.MetricTemplate
			if err := json.Unmarshal(raw, &mt.TypeMeta); err != nil || mt.Kind != "MetricTemplate" {
				continue
			}
			if err := json.Unmarshal(raw, &mt); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			q, err := NewQueryModel(cd, metric).Render(mt.Name, mt.Spec.Query)
			if err != nil {
				t.Errorf("%s: template %s does not render: %v", filepath.Base(path), mt.Name, err)
				continue
			}
			if strings.Contains(q, "{{") || (strings.Contains(mt.Spec.Query, "target") && !strings.Contains(q, "podinfo")) {
				t.Errorf("%s: template %s rendered to %q", filepath.Base(path), mt.Name, q)
			}
			rendered++
		}
	}
	if rendered < 20 {
		t.Errorf("rendered only %d templates", rendered)
	}
	t.Logf("rendered %d example MetricTemplates", rendered)
}
