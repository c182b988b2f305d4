package loadtester

import (
	"errors"
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// commandLine is a command line as a POSIX shell reads it.
type commandLine struct {
	// words are the words of a line that is one simple command, quotes
	// removed; nil for any other line.
	words []string
	// commands are the names (first words) of every command the line runs,
	// in order, for a line made of simple commands joined by pipes (|) and
	// lists (;, &&, ||, newlines).
	commands []string
	// syntax, when set, names the first construct that makes the line more
	// than one simple command ("|", ";", "&&", "||", "&", ...).
	syntax string
	// shellOnly, when set, names the first construct whose effect the load
	// tester cannot check command by command: an expansion ($VAR, $(...),
	// `...`, $((...))), a redirection other than to /dev/null or between
	// descriptors, a variable assignment, a background job or a compound
	// command (if, for, while, case, subshells, functions...). Only a
	// shell that is itself allowed may run such a line.
	shellOnly string
}

// parseCommandLine reads a command line with a POSIX shell parser. It fails
// only on lines that are not valid shell; what the line does is described
// in the result.
func parseCommandLine(line string) (commandLine, error) {
	f, err := syntax.NewParser(syntax.Variant(syntax.LangPOSIX)).Parse(strings.NewReader(line), "")
	if err != nil {
		return commandLine{}, fmt.Errorf("parsing the command line: %w", err)
	}
	var c commandLine
	for i, st := range f.Stmts {
		c.stmt(st)
		if i > 0 {
			c.note(";")
		}
	}
	if c.syntax == "" && len(f.Stmts) == 1 {
		// One simple command: its words are known.
		call := f.Stmts[0].Cmd.(*syntax.CallExpr) //nolint:forcetypeassert // checked by stmt: syntax is set otherwise
		c.words = make([]string, 0, len(call.Args))
		for _, w := range call.Args {
			s, _ := literal(w) // checked by stmt: shellOnly is set otherwise
			c.words = append(c.words, s)
		}
	}
	return c, nil
}

// note records a construct beyond one simple command.
func (c *commandLine) note(construct string) {
	if c.syntax == "" {
		c.syntax = construct
	}
}

// needsShell records a construct only an allowed shell may run.
func (c *commandLine) needsShell(construct string) {
	c.note(construct)
	if c.shellOnly == "" {
		c.shellOnly = construct
	}
}

func (c *commandLine) stmt(st *syntax.Stmt) {
	if st.Background || st.Coprocess {
		c.needsShell("&")
	}
	if st.Negated {
		c.note("!")
	}
	for _, r := range st.Redirs {
		c.note(r.Op.String())
		if !harmlessRedirect(r) {
			c.needsShell("redirection " + r.Op.String())
		}
	}
	switch cmd := st.Cmd.(type) {
	case *syntax.CallExpr:
		if len(cmd.Assigns) > 0 {
			c.needsShell("variable assignment " + cmd.Assigns[0].Name.Value + "=")
		}
		if len(cmd.Args) == 0 {
			return
		}
		for _, w := range cmd.Args {
			if _, err := literal(w); err != nil {
				c.needsShell(err.Error())
			}
		}
		name, _ := literal(cmd.Args[0])
		c.commands = append(c.commands, name)
	case *syntax.BinaryCmd:
		c.note(cmd.Op.String())
		switch cmd.Op {
		case syntax.AndStmt, syntax.OrStmt, syntax.Pipe:
		default:
			c.needsShell(cmd.Op.String())
		}
		c.stmt(cmd.X)
		c.stmt(cmd.Y)
	case nil:
		// A line with only a comment or only redirections.
	default:
		c.needsShell(compoundName(cmd))
	}
}

// harmlessRedirect reports whether a redirection only moves output between
// descriptors (2>&1, >&2) or to /dev/null.
func harmlessRedirect(r *syntax.Redirect) bool {
	target, err := literal(r.Word)
	if err != nil {
		return false
	}
	switch r.Op {
	case syntax.DplOut, syntax.DplIn:
		return target == "-" || isDigits(target)
	case syntax.RdrOut, syntax.AppOut, syntax.RdrIn, syntax.RdrClob:
		return target == "/dev/null"
	}
	return false
}

func isDigits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// compoundName names a compound command in messages.
func compoundName(cmd syntax.Command) string {
	switch cmd.(type) {
	case *syntax.IfClause:
		return "if"
	case *syntax.WhileClause:
		return "while"
	case *syntax.ForClause:
		return "for"
	case *syntax.CaseClause:
		return "case"
	case *syntax.Block:
		return "{ }"
	case *syntax.Subshell:
		return "( )"
	case *syntax.FuncDecl:
		return "function definition"
	}
	return fmt.Sprintf("%T", cmd)
}

// errNotLiteral says a word needs an expansion; its text names it.
type errNotLiteral string

func (e errNotLiteral) Error() string { return string(e) }

// literal is a word with its quotes removed, or an error naming the first
// expansion it holds. The load tester never expands words: no variables
// from its environment, no command substitution.
func literal(w *syntax.Word) (string, error) {
	if w == nil {
		return "", errNotLiteral("an empty redirection")
	}
	var b strings.Builder
	for _, part := range w.Parts {
		switch p := part.(type) {
		case *syntax.Lit:
			unescape(&b, p.Value, false)
		case *syntax.SglQuoted:
			if p.Dollar {
				return "", errNotLiteral("$'...' quoting")
			}
			b.WriteString(p.Value)
		case *syntax.DblQuoted:
			for _, inner := range p.Parts {
				lit, ok := inner.(*syntax.Lit)
				if !ok {
					return "", expansionError(inner)
				}
				unescape(&b, lit.Value, true)
			}
		default:
			return "", expansionError(part)
		}
	}
	return b.String(), nil
}

// expansionError names the expansion of a word part.
func expansionError(part syntax.WordPart) error {
	switch p := part.(type) {
	case *syntax.ParamExp:
		name := "$"
		if p.Param != nil {
			name += p.Param.Value
		}
		return errNotLiteral("the variable expansion " + name)
	case *syntax.CmdSubst:
		return errNotLiteral("command substitution $(...)")
	case *syntax.ArithmExp:
		return errNotLiteral("arithmetic expansion $((...))")
	case *syntax.ProcSubst:
		return errNotLiteral("process substitution")
	}
	return errNotLiteral(fmt.Sprintf("the expansion %T", part))
}

// unescape writes a literal's text with its backslashes removed as a POSIX
// shell does: outside quotes a backslash quotes the next character (and a
// backslash-newline disappears); inside double quotes only before $, `, ",
// \ and newline.
func unescape(b *strings.Builder, s string, inDouble bool) {
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i == len(s)-1 {
			b.WriteByte(s[i])
			continue
		}
		next := s[i+1]
		switch {
		case next == '\n':
			i++
		case !inDouble || strings.IndexByte("$`\"\\", next) >= 0:
			b.WriteByte(next)
			i++
		default:
			b.WriteByte('\\')
		}
	}
}

// errNoCommand says a command line has nothing to run.
var errNoCommand = errors.New("the command line runs no command")
