package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
)

const (
	title = "API reference"
	intro = "This page describes the kinds Sluice serves in the `flagger.app` API group. " +
		"It is generated, so do not edit it by hand: `make manifests` runs controller-gen to turn the doc comments " +
		"and validation markers of the Go types in `api/` into the CRDs in `kustomize/base/crd/`, " +
		"then `hack/apidocs` renders those CRDs as this page. " +
		"To change a description, edit the Go doc comment and run `make manifests`."
)

// standardFields are the top-level fields every kind has; the reference
// leaves them out.
var standardFields = []string{"apiVersion", "kind", "metadata"}

var fieldHeader = []string{"Field", "Type", "Default", "Validation", "Description"}

// kindDoc is one served version of one CRD, ready to render.
type kindDoc struct {
	crd      *apiextensionsv1.CustomResourceDefinition
	version  *apiextensionsv1.CustomResourceDefinitionVersion
	name     string // Kind, with the version appended when a CRD has several
	anchor   string
	sections []*section
}

// writeDocument renders the whole reference for crds.
func writeDocument(w io.Writer, crds []apiextensionsv1.CustomResourceDefinition) {
	ids := anchors{}
	var kinds []kindDoc
	for i := range crds {
		crd := &crds[i]
		for j := range crd.Spec.Versions {
			v := &crd.Spec.Versions[j]
			if !v.Served {
				continue
			}
			k := kindDoc{crd: crd, version: v, name: crd.Spec.Names.Kind}
			if len(crd.Spec.Versions) > 1 {
				k.name += " " + v.Name
			}
			k.anchor = ids.add(k.name)
			if v.Schema != nil && v.Schema.OpenAPIV3Schema != nil {
				b := sectionBuilder{anchors: ids}
				b.object(v.Schema.OpenAPIV3Schema, k.anchor, crd.Spec.Names.Kind, nil, standardFields...)
				k.sections = b.sections
			}
			kinds = append(kinds, k)
		}
	}

	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	p("# %s\n\n%s\n\n", title, intro)
	for _, k := range kinds {
		p("- [%s](#%s)\n", k.name, k.anchor)
	}
	p("\n")
	for _, k := range kinds {
		writeKind(w, k)
	}
}

func writeKind(w io.Writer, k kindDoc) {
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	crd, v := k.crd, k.version
	names := crd.Spec.Names

	p("%s", heading(2, k.anchor, k.name))
	var root *section
	if len(k.sections) > 0 {
		root = k.sections[0]
		if root.description != "" {
			p("%s\n\n", text(root.description))
		}
	}

	p("- API version: %s\n", code(crd.Spec.Group+"/"+v.Name))
	p("- Scope: %s\n", crd.Spec.Scope)
	p("- Resource: %s (singular %s", code(names.Plural), code(names.Singular))
	if len(names.ShortNames) > 0 {
		p(", short names %s", codeList(names.ShortNames))
	}
	if len(names.Categories) > 0 {
		p(", categories %s", codeList(names.Categories))
	}
	p(")\n")
	if s := v.Subresources; s != nil {
		var subs []string
		if s.Status != nil {
			subs = append(subs, "status")
		}
		if s.Scale != nil {
			subs = append(subs, "scale")
		}
		if len(subs) > 0 {
			p("- Subresources: %s\n", codeList(subs))
		}
	}
	if v.Deprecated {
		msg := "deprecated"
		if v.DeprecationWarning != nil {
			msg = text(*v.DeprecationWarning)
		}
		p("- Deprecated: %s\n", msg)
	}
	p("\n")

	if len(v.AdditionalPrinterColumns) > 0 {
		p("Columns of `kubectl get %s` (those with a priority above 0 only with `-o wide`):\n\n", names.Plural)
		header, rows := printerColumns(v.AdditionalPrinterColumns)
		writeTable(w, header, rows)
	}

	if root == nil {
		p("The CRD has no schema.\n\n")
		return
	}
	p("Fields besides %s:\n\n", codeList(standardFields))
	writeRows(w, root.rows)
	for _, sec := range k.sections[1:] {
		writeSection(w, sec)
	}
}

// printerColumns renders the printer columns as a table, leaving out the
// Description column when no column has one.
func printerColumns(cols []apiextensionsv1.CustomResourceColumnDefinition) (header []string, rows [][]string) {
	header = []string{"Column", "Type", "JSONPath", "Priority", "Description"}
	described := false
	for _, c := range cols {
		typ := c.Type
		if c.Format != "" {
			typ += " (" + c.Format + ")"
		}
		rows = append(rows, []string{
			text(c.Name), code(typ), code(c.JSONPath), strconv.Itoa(int(c.Priority)), text(c.Description),
		})
		described = described || c.Description != ""
	}
	if !described {
		header = header[:4]
		for i := range rows {
			rows[i] = rows[i][:4]
		}
	}
	return header, rows
}

func writeSection(w io.Writer, sec *section) {
	p := func(format string, args ...any) { _, _ = fmt.Fprintf(w, format, args...) }
	p("%s", heading(3, sec.anchor, code(sec.path)))
	if sec.parent != nil {
		p("Appears in %s.\n\n", link(sec.parent.path, sec.parent.anchor))
	}
	if sec.description != "" {
		p("%s\n\n", text(sec.description))
	}
	writeRows(w, sec.rows)
}

func writeRows(w io.Writer, rows []row) {
	if len(rows) == 0 {
		_, _ = fmt.Fprint(w, "No fields.\n\n")
		return
	}
	cells := make([][]string, len(rows))
	for i, r := range rows {
		cells[i] = r.cells()
	}
	writeTable(w, fieldHeader, cells)
}

func codeList(items []string) string {
	out := make([]string, len(items))
	for i, s := range items {
		out[i] = code(s)
	}
	return strings.Join(out, ", ")
}
