package main

import (
	"fmt"
	"io"
	"strings"
)

// oneLine joins the lines of a CRD description with single spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// text makes prose safe for a table cell: it joins lines, escapes pipes and
// keeps angle brackets such as <name>-primary from being read as HTML. Code
// spans (between backticks) are left as written apart from pipes.
func text(s string) string {
	parts := strings.Split(oneLine(s), "`")
	for i, p := range parts {
		if i%2 == 0 {
			p = strings.NewReplacer("<", "&lt;", ">", "&gt;").Replace(p)
		}
		parts[i] = strings.ReplaceAll(p, "|", `\|`)
	}
	return strings.Join(parts, "`")
}

// code renders s as an inline code span that is safe in a table cell.
func code(s string) string {
	s = strings.ReplaceAll(oneLine(s), "|", `\|`)
	if s == "" {
		return "` `"
	}
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	if fence != "`" || strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		return fence + " " + s + " " + fence
	}
	return fence + s + fence
}

// link renders a code-formatted link to an anchor on the same page.
func link(label, anchor string) string {
	return fmt.Sprintf("[%s](#%s)", code(label), anchor)
}

// heading renders a Markdown heading carrying an explicit anchor, so links
// do not depend on how a renderer derives ids from heading text.
func heading(level int, anchor, title string) string {
	return fmt.Sprintf("%s <a id=%q></a>%s\n\n", strings.Repeat("#", level), anchor, title)
}

// writeTable writes a Markdown table; cells must already be escaped.
func writeTable(w io.Writer, header []string, rows [][]string) {
	line := func(cells []string) {
		_, _ = fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	line(header)
	sep := make([]string, len(header))
	for i := range sep {
		sep[i] = "---"
	}
	line(sep)
	for _, r := range rows {
		line(r)
	}
	_, _ = fmt.Fprintln(w)
}

// anchors hands out unique anchor ids for one document.
type anchors map[string]bool

// add returns an id derived from the given parts, lower-cased and joined
// with dashes, with a numeric suffix if the id is already taken.
func (a anchors) add(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		for _, r := range strings.ToLower(p) {
			switch {
			case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
				b.WriteRune(r)
			case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
				b.WriteByte('-')
			}
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "-") {
			b.WriteByte('-')
		}
	}
	id := strings.TrimSuffix(b.String(), "-")
	unique := id
	for n := 2; a[unique]; n++ {
		unique = fmt.Sprintf("%s-%d", id, n)
	}
	a[unique] = true
	return unique
}
