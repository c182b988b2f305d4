package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// widget wraps field f in spec of a one-version CRD of kind Widget.
func widget(f apiextensionsv1.JSONSchemaProps, required bool) apiextensionsv1.CustomResourceDefinition {
	spec := apiextensionsv1.JSONSchemaProps{
		Type:        "object",
		Description: "spec is the widget.",
		Properties:  map[string]apiextensionsv1.JSONSchemaProps{"f": f},
	}
	if required {
		spec.Required = []string{"f"}
	}
	return apiextensionsv1.CustomResourceDefinition{
		TypeMeta:   metav1.TypeMeta{Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "example.com",
			Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Kind: "Widget", Plural: "widgets", Singular: "widget"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type:       "object",
					Properties: map[string]apiextensionsv1.JSONSchemaProps{"spec": spec},
				}},
			}},
		},
	}
}

func raw(s string) *apiextensionsv1.JSON { return &apiextensionsv1.JSON{Raw: []byte(s)} }

func str(desc string) apiextensionsv1.JSONSchemaProps {
	return apiextensionsv1.JSONSchemaProps{Type: "string", Description: desc}
}

func TestWriteDocument_RendersFieldRows(t *testing.T) {
	tests := []struct {
		name     string
		field    apiextensionsv1.JSONSchemaProps
		required bool
		// want are lines that must appear in the output, in this order.
		want []string
	}{{
		name:  "string default and enum, empty value quoted",
		field: apiextensionsv1.JSONSchemaProps{Type: "string", Default: raw(`"info"`), Enum: []apiextensionsv1.JSON{*raw(`""`), *raw(`"info"`)}, Description: "severity."},
		want:  []string{"| `f` | `string` | `info` | one of `\"\"`, `info` | severity. |"},
	}, {
		name:     "required integer with format and bounds",
		field:    apiextensionsv1.JSONSchemaProps{Type: "integer", Format: "int32", Minimum: ptr.To(1.0), Maximum: ptr.To(100.0), ExclusiveMaximum: true, Default: raw(`10`)},
		required: true,
		want:     []string{"| `f` | `integer (int32)` | `10` | required<br>minimum 1<br>maximum 100 (exclusive) |  |"},
	}, {
		name: "list of strings with item pattern escapes pipes",
		field: apiextensionsv1.JSONSchemaProps{Type: "array", MaxItems: ptr.To[int64](3),
			Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{Type: "string", Pattern: "^(a|b)$"}}},
		want: []string{"| `f` | `[]string` |  | max items 3<br>each item: pattern `^(a\\|b)$` |  |"},
	}, {
		name: "map of strings",
		field: apiextensionsv1.JSONSchemaProps{Type: "object",
			AdditionalProperties: &apiextensionsv1.JSONSchemaPropsOrBool{Allows: true, Schema: &apiextensionsv1.JSONSchemaProps{Type: "string"}}},
		want: []string{"| `f` | `map[string]string` |  |  |  |"},
	}, {
		name:  "int or string",
		field: apiextensionsv1.JSONSchemaProps{XIntOrString: true, AnyOf: []apiextensionsv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
		want:  []string{"| `f` | `int or string` |  |  |  |"},
	}, {
		name:  "description lines joined, HTML and pipes escaped, code kept",
		field: str("f names\n<name>-primary | see `a<b`."),
		want:  []string{"| `f` | `string` |  |  | f names &lt;name&gt;-primary \\| see `a<b`. |"},
	}, {
		name: "nested object gets a linked section with sorted fields",
		field: apiextensionsv1.JSONSchemaProps{Type: "object", Description: "f is nested.", Default: raw(`{}`),
			XValidations: apiextensionsv1.ValidationRules{{Rule: "has(self.a) || has(self.b)", Message: "set a or b"}},
			Properties:   map[string]apiextensionsv1.JSONSchemaProps{"b": str("b."), "a": str("a.")}},
		want: []string{
			"| `f` | [`object`](#widget-spec-f) | `{}` | rule: set a or b | f is nested. |",
			"### <a id=\"widget-spec-f\"></a>`Widget.spec.f`",
			"Appears in [`Widget.spec`](#widget-spec).",
			"f is nested.",
			"| `a` | `string` |  |  | a. |",
			"| `b` | `string` |  |  | b. |",
		},
	}, {
		name: "list of objects links to its item section",
		field: apiextensionsv1.JSONSchemaProps{Type: "array", Items: &apiextensionsv1.JSONSchemaPropsOrArray{Schema: &apiextensionsv1.JSONSchemaProps{
			Type: "object", Description: "Item is one entry.", Required: []string{"name"},
			XValidations: apiextensionsv1.ValidationRules{{Rule: "self.name != 'x'"}},
			Properties:   map[string]apiextensionsv1.JSONSchemaProps{"name": str("name.")},
		}}},
		want: []string{
			"| `f` | [`[]object`](#widget-spec-f) |  | each item: rule: `self.name != 'x'` |  |",
			"### <a id=\"widget-spec-f\"></a>`Widget.spec.f[]`",
			"Item is one entry.",
			"| `name` | `string` |  | required | name. |",
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			writeDocument(&buf, []apiextensionsv1.CustomResourceDefinition{widget(tt.field, tt.required)})
			out := buf.String()
			rest := out
			for _, line := range tt.want {
				i := strings.Index(rest, "\n"+line+"\n")
				if i < 0 {
					t.Fatalf("output lacks line (or has it out of order):\n%s\n--- output:\n%s", line, out)
				}
				rest = rest[i+len(line)+1:]
			}
		})
	}
}

func TestWriteDocument_IsDeterministic(t *testing.T) {
	f := apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{}}
	for _, name := range []string{"d", "c", "b", "a", "e", "f", "g", "h"} {
		f.Properties[name] = apiextensionsv1.JSONSchemaProps{Type: "object", Properties: map[string]apiextensionsv1.JSONSchemaProps{"x": str(name)}}
	}
	crds := []apiextensionsv1.CustomResourceDefinition{widget(f, false)}
	var first bytes.Buffer
	writeDocument(&first, crds)
	for range 20 {
		var again bytes.Buffer
		writeDocument(&again, crds)
		if !bytes.Equal(first.Bytes(), again.Bytes()) {
			t.Fatal("two renderings of the same CRD differ")
		}
	}
}

func TestAPIDocs_UpToDate(t *testing.T) {
	got, err := generate("../../kustomize/base/crd")
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/api.md is stale: run make manifests\nfirst difference:\n%s", firstDiff(string(want), string(got)))
	}
}

// firstDiff shows the first line where the checked-in file and the
// regenerated one differ.
func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := range max(len(w), len(g)) {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return "line " + strconv.Itoa(i+1) + ":\n  docs/api.md: " + wl + "\n  generated:   " + gl
		}
	}
	return "(trailing newline)"
}
