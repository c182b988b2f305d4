// Package crdfields flattens the OpenAPI schemas of CustomResourceDefinitions
// into one line per field path, so that two CRDs can be compared field by
// field: Sluice's generated CRDs against the list taken from Flagger's.
package crdfields

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// Field is one path in a CRD schema.
type Field struct {
	// Resource is the CRD's plural name, such as canaries.
	Resource string
	// Path is the dotted path from the object's root, with [] for list
	// items and {} for map values, such as spec.analysis.metrics[].name.
	Path string
	// Type is the OpenAPI type, or int-or-string.
	Type string
	// Enum holds the allowed values, sorted; empty when any value is allowed.
	Enum []string
	// Required is true when the parent object requires the field, directly
	// or in every branch of a oneOf.
	Required bool
}

// String renders the field as one line of the field list format:
// "<resource> <path> <type> [enum=a|b] [required]".
func (f Field) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", f.Resource, f.Path, f.Type)
	if len(f.Enum) > 0 {
		fmt.Fprintf(&b, " enum=%s", strings.Join(f.Enum, "|"))
	}
	if f.Required {
		b.WriteString(" required")
	}
	return b.String()
}

// Key identifies the field across CRDs: resource and path.
func (f Field) Key() string { return f.Resource + " " + f.Path }

// FromYAML reads every CustomResourceDefinition in a multi-document YAML
// stream and returns the fields of every served version's schema, sorted.
// Documents of other kinds are skipped.
func FromYAML(r io.Reader) ([]Field, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var fields []Field
	for {
		var crd apiextensionsv1.CustomResourceDefinition
		if err := dec.Decode(&crd); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return nil, fmt.Errorf("decoding CRD: %w", err)
		}
		if crd.Kind != "CustomResourceDefinition" {
			continue
		}
		fields = append(fields, FromCRD(&crd)...)
	}
	sort.Slice(fields, func(i, j int) bool { return fields[i].Key() < fields[j].Key() })
	return fields, nil
}

// FromCRD returns the fields of every version's schema of one CRD.
func FromCRD(crd *apiextensionsv1.CustomResourceDefinition) []Field {
	var fields []Field
	for _, v := range crd.Spec.Versions {
		if v.Schema == nil || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		walk(crd.Spec.Names.Plural, "", v.Schema.OpenAPIV3Schema, false, &fields)
	}
	return fields
}

func walk(resource, path string, s *apiextensionsv1.JSONSchemaProps, required bool, out *[]Field) {
	if path != "" && path != "apiVersion" && path != "kind" && path != "metadata" {
		*out = append(*out, Field{Resource: resource, Path: path, Type: typeOf(s), Enum: enumOf(s), Required: required})
	}
	if path == "metadata" {
		return
	}
	req := requiredOf(s)
	for name, child := range s.Properties {
		walk(resource, join(path, name), &child, slices.Contains(req, name), out)
	}
	if s.Items != nil && s.Items.Schema != nil {
		walk(resource, path+"[]", s.Items.Schema, false, out)
	}
	if s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil {
		walk(resource, path+"{}", s.AdditionalProperties.Schema, false, out)
	}
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func typeOf(s *apiextensionsv1.JSONSchemaProps) string {
	switch {
	case s.XIntOrString:
		return "int-or-string"
	case s.Type != "":
		return s.Type
	case len(s.Properties) > 0 || s.AdditionalProperties != nil:
		return "object"
	default:
		return "any"
	}
}

func enumOf(s *apiextensionsv1.JSONSchemaProps) []string {
	var values []string
	for _, e := range s.Enum {
		values = append(values, strings.Trim(string(e.Raw), `"`))
	}
	sort.Strings(values)
	return values
}

// requiredOf returns the properties an object requires: its required list
// plus the names required by every branch of its oneOf, which is how
// hand-written CRDs often express "one of these, and always these".
func requiredOf(s *apiextensionsv1.JSONSchemaProps) []string {
	req := slices.Clone(s.Required)
	if len(s.OneOf) == 0 {
		return req
	}
	common := slices.Clone(s.OneOf[0].Required)
	for _, branch := range s.OneOf[1:] {
		common = slices.DeleteFunc(common, func(n string) bool { return !slices.Contains(branch.Required, n) })
	}
	return append(req, common...)
}

// Format renders fields one per line.
func Format(fields []Field) []byte {
	var b bytes.Buffer
	for _, f := range fields {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// Parse reads the field list format written by Format; blank lines and lines
// starting with # are skipped.
func Parse(r io.Reader) ([]Field, error) {
	var fields []Field
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Fields(line)
		if len(parts) < 3 {
			return nil, fmt.Errorf("line %d: want \"<resource> <path> <type> [enum=...] [required]\", got %q", n, line)
		}
		f := Field{Resource: parts[0], Path: parts[1], Type: parts[2]}
		for _, p := range parts[3:] {
			switch {
			case strings.HasPrefix(p, "enum="):
				f.Enum = strings.Split(strings.TrimPrefix(p, "enum="), "|")
			case p == "required":
				f.Required = true
			default:
				return nil, fmt.Errorf("line %d: unknown attribute %q", n, p)
			}
		}
		fields = append(fields, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading field list: %w", err)
	}
	return fields, nil
}
