package crdfields

import (
	"bytes"
	"slices"
	"strings"
	"testing"
)

const sample = `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            oneOf:
            - required: [interval, count]
            - required: [interval, steps]
            properties:
              size: {type: number}
              interval: {type: string}
              count: {type: number}
              steps: {type: array, items: {type: number}}
              mode: {type: string, enum: ["", fast, slow]}
              port: {x-kubernetes-int-or-string: true}
              labels: {type: object, additionalProperties: {type: string}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}
`

func TestFromYAML_FlattensPathsTypesEnumsAndRequired(t *testing.T) {
	fields, err := FromYAML(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSpace(string(Format(fields))), "\n")
	want := []string{
		"widgets spec object",
		"widgets spec.count number",
		"widgets spec.interval string required",
		"widgets spec.labels object",
		"widgets spec.labels{} string",
		"widgets spec.mode string enum=|fast|slow",
		"widgets spec.port int-or-string",
		"widgets spec.size number required",
		"widgets spec.steps array",
		"widgets spec.steps[] number",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	parsed, err := Parse(bytes.NewReader(Format(fields)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(Format(parsed), Format(fields)) {
		t.Errorf("Parse(Format(x)) differs from x:\n%s", Format(parsed))
	}
}

func TestParse_RejectsMalformedLines(t *testing.T) {
	for _, line := range []string{"widgets spec", "widgets spec string colour=blue"} {
		if _, err := Parse(strings.NewReader(line)); err == nil {
			t.Errorf("Parse(%q) accepted a malformed line", line)
		}
	}
}
