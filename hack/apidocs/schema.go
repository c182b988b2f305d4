package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

// section is one object of a schema, rendered as a heading and a field table.
type section struct {
	anchor string
	// path is the object's place in the kind, such as Canary.spec.analysis
	// or Canary.spec.analysis.metrics[] for the items of a list.
	path        string
	parent      *section // nil for the kind's top-level fields
	description string
	rows        []row
}

// row is one field of a section, already rendered as Markdown cells.
type row struct {
	field, typ, def, validation, description string
}

func (r row) cells() []string {
	return []string{r.field, r.typ, r.def, r.validation, r.description}
}

// sectionBuilder walks a schema depth first, in field-name order, and emits
// a section for every object that has properties.
type sectionBuilder struct {
	anchors  anchors
	sections []*section
}

// object adds the section for schema s, found at path, and for every object
// nested in it. skip lists field names left out of the table.
func (b *sectionBuilder) object(s *apiextensionsv1.JSONSchemaProps, anchor, path string, parent *section, skip ...string) {
	sec := &section{anchor: anchor, path: path, parent: parent, description: s.Description}
	b.sections = append(b.sections, sec)

	names := make([]string, 0, len(s.Properties))
	for name := range s.Properties {
		if !slices.Contains(skip, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)

	for _, name := range names {
		prop := s.Properties[name]
		nested, suffix := innerObject(&prop)
		var childAnchor string
		if nested != nil {
			childAnchor = b.anchors.add(anchor, name)
		}
		sec.rows = append(sec.rows, row{
			field:       code(name),
			typ:         typeCell(&prop, childAnchor),
			def:         defaultCell(prop.Default),
			validation:  strings.Join(validations(&prop, slices.Contains(s.Required, name)), "<br>"),
			description: text(prop.Description),
		})
		if nested != nil {
			b.object(nested, childAnchor, path+"."+name+suffix, sec)
		}
	}
}

// innerObject follows lists and maps down to an object with properties and
// returns it with the path suffix that leads there ("[]" per list level,
// "{}" per map level), or nil if the field holds no such object.
func innerObject(s *apiextensionsv1.JSONSchemaProps) (*apiextensionsv1.JSONSchemaProps, string) {
	suffix := ""
	for s != nil {
		switch {
		case len(s.Properties) > 0:
			return s, suffix
		case s.Type == "array" && s.Items != nil && s.Items.Schema != nil:
			s, suffix = s.Items.Schema, suffix+"[]"
		case s.Type == "object" && s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			s, suffix = s.AdditionalProperties.Schema, suffix+"{}"
		default:
			return nil, ""
		}
	}
	return nil, ""
}

// typeCell renders a field's type. When the field holds an object with its
// own section, the type links to anchor.
func typeCell(s *apiextensionsv1.JSONSchemaProps, anchor string) string {
	t := typeName(s)
	if anchor != "" {
		return link(t, anchor)
	}
	return code(t)
}

// typeName spells a schema type the way a reader of YAML thinks of it:
// string, integer (int32), []string, map[string]string, object.
func typeName(s *apiextensionsv1.JSONSchemaProps) string {
	switch {
	case s == nil:
		return "any"
	case s.XIntOrString:
		return "int or string"
	case s.XEmbeddedResource:
		return "Kubernetes object"
	}
	switch s.Type {
	case "array":
		if s.Items == nil || s.Items.Schema == nil {
			return "[]any"
		}
		return "[]" + typeName(s.Items.Schema)
	case "object":
		switch {
		case len(s.Properties) > 0:
			return "object"
		case s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			return "map[string]" + typeName(s.AdditionalProperties.Schema)
		case s.XPreserveUnknownFields != nil && *s.XPreserveUnknownFields:
			return "object (any fields)"
		}
		return "object"
	case "":
		return "any"
	}
	if s.Format != "" {
		return fmt.Sprintf("%s (%s)", s.Type, s.Format)
	}
	return s.Type
}

// defaultCell renders a default value; strings appear without quotes unless
// empty.
func defaultCell(d *apiextensionsv1.JSON) string {
	if d == nil {
		return ""
	}
	return literal(d.Raw)
}

func literal(raw []byte) string {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil && s != "" {
		return code(s)
	}
	return code(string(raw))
}

// validations lists the constraints on a field: whether it is required, its
// own limits, and the limits on its list items or map values.
func validations(s *apiextensionsv1.JSONSchemaProps, required bool) []string {
	var out []string
	if required {
		out = append(out, "required")
	}
	out = append(out, limits(s, "")...)
	prefix := ""
	for {
		switch {
		case s.Type == "array" && s.Items != nil && s.Items.Schema != nil:
			s, prefix = s.Items.Schema, prefix+"each item: "
		case s.Type == "object" && len(s.Properties) == 0 && s.AdditionalProperties != nil && s.AdditionalProperties.Schema != nil:
			s, prefix = s.AdditionalProperties.Schema, prefix+"each value: "
		default:
			return out
		}
		out = append(out, limits(s, prefix)...)
	}
}

// limits renders the constraints set directly on s, each with prefix.
func limits(s *apiextensionsv1.JSONSchemaProps, prefix string) []string {
	var out []string
	add := func(format string, args ...any) {
		out = append(out, prefix+fmt.Sprintf(format, args...))
	}
	if len(s.Enum) > 0 {
		values := make([]string, len(s.Enum))
		for i, v := range s.Enum {
			values[i] = literal(v.Raw)
		}
		add("one of %s", strings.Join(values, ", "))
	}
	bound := func(name string, v *float64, exclusive bool) {
		if v == nil {
			return
		}
		if exclusive {
			add("%s %s (exclusive)", name, number(*v))
			return
		}
		add("%s %s", name, number(*v))
	}
	bound("minimum", s.Minimum, s.ExclusiveMinimum)
	bound("maximum", s.Maximum, s.ExclusiveMaximum)
	if s.MultipleOf != nil {
		add("multiple of %s", number(*s.MultipleOf))
	}
	count := func(name string, v *int64) {
		if v != nil {
			add("%s %d", name, *v)
		}
	}
	count("min length", s.MinLength)
	count("max length", s.MaxLength)
	count("min items", s.MinItems)
	count("max items", s.MaxItems)
	count("min properties", s.MinProperties)
	count("max properties", s.MaxProperties)
	if s.UniqueItems {
		add("unique items")
	}
	if s.Pattern != "" {
		add("pattern %s", code(s.Pattern))
	}
	if s.XListType != nil {
		if len(s.XListMapKeys) > 0 {
			add("list type %s, keyed by %s", code(*s.XListType), code(strings.Join(s.XListMapKeys, ", ")))
		} else {
			add("list type %s", code(*s.XListType))
		}
	}
	if s.XMapType != nil {
		add("map type %s", code(*s.XMapType))
	}
	for _, v := range s.XValidations {
		switch {
		case v.Message != "":
			add("rule: %s", text(v.Message))
		case v.MessageExpression != "":
			add("rule: %s", code(v.MessageExpression))
		default:
			add("rule: %s", code(v.Rule))
		}
	}
	return out
}

// number prints a schema bound without a trailing .0 for whole numbers.
func number(v float64) string {
	return fmt.Sprintf("%g", v)
}
