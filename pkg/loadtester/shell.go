package loadtester

import (
	"errors"
	"fmt"
	"strings"
)

// ShellSyntaxError says a command line uses shell syntax beyond simple
// words (pipes, lists, redirections, command substitution, positional
// parameters), so it can only be run by a shell.
type ShellSyntaxError struct {
	// Syntax is the construct found, for example "|" or "$(".
	Syntax string
}

// Error names the shell syntax found.
func (e *ShellSyntaxError) Error() string {
	return fmt.Sprintf("the command line uses the shell syntax %q", e.Syntax)
}

// errTrailingBackslash and friends are malformed command lines.
var (
	errTrailingBackslash = errors.New("the command line ends with a backslash")
	errSingleQuote       = errors.New("unterminated single quote")
	errDoubleQuote       = errors.New("unterminated double quote")
	errBrace             = errors.New("unterminated ${")
)

// shellWords splits a simple command line into words the way a POSIX shell
// does: blanks separate words, single quotes keep text literally, double
// quotes keep text but expand $NAME and ${NAME}, a backslash escapes the
// next character, a word starting with # begins a comment. Variables come
// from getenv; an unquoted expansion is split on blanks. Anything else that
// needs a shell is reported as a *ShellSyntaxError.
func shellWords(line string, getenv func(string) string) ([]string, error) {
	sp := splitter{in: []rune(line), getenv: getenv}
	if err := sp.run(); err != nil {
		return nil, err
	}
	return sp.words, nil
}

type splitter struct {
	in      []rune
	pos     int
	getenv  func(string) string
	words   []string
	cur     strings.Builder
	started bool // the current word exists, even if empty ("")
}

func (s *splitter) endWord() {
	if s.started {
		s.words = append(s.words, s.cur.String())
	}
	s.cur.Reset()
	s.started = false
}

func (s *splitter) add(r rune) {
	s.cur.WriteRune(r)
	s.started = true
}

func (s *splitter) run() error {
	for s.pos < len(s.in) {
		r := s.in[s.pos]
		s.pos++
		switch {
		case r == ' ' || r == '\t' || r == '\n':
			s.endWord()
		case r == '#' && !s.started:
			s.pos = len(s.in) // a comment runs to the end of the line
		case strings.ContainsRune("|&;<>()`", r):
			return &ShellSyntaxError{Syntax: string(r)}
		case r == '\\':
			if s.pos == len(s.in) {
				return errTrailingBackslash
			}
			if next := s.in[s.pos]; next != '\n' { // backslash-newline joins lines
				s.add(next)
			}
			s.pos++
		case r == '\'':
			if err := s.singleQuoted(); err != nil {
				return err
			}
		case r == '"':
			if err := s.doubleQuoted(); err != nil {
				return err
			}
		case r == '$':
			value, literal, err := s.expand()
			if err != nil {
				return err
			}
			if literal {
				s.add('$')
				continue
			}
			s.addSplit(value)
		default:
			s.add(r)
		}
	}
	s.endWord()
	return nil
}

func (s *splitter) singleQuoted() error {
	s.started = true
	for s.pos < len(s.in) {
		r := s.in[s.pos]
		s.pos++
		if r == '\'' {
			return nil
		}
		s.cur.WriteRune(r)
	}
	return errSingleQuote
}

func (s *splitter) doubleQuoted() error {
	s.started = true
	for s.pos < len(s.in) {
		r := s.in[s.pos]
		s.pos++
		switch r {
		case '"':
			return nil
		case '`':
			return &ShellSyntaxError{Syntax: "`"}
		case '\\':
			if s.pos < len(s.in) && strings.ContainsRune("$`\"\\\n", s.in[s.pos]) {
				if s.in[s.pos] != '\n' {
					s.cur.WriteRune(s.in[s.pos])
				}
				s.pos++
				continue
			}
			s.cur.WriteRune(r)
		case '$':
			value, literal, err := s.expand()
			if err != nil {
				return err
			}
			if literal {
				value = "$"
			}
			s.cur.WriteString(value)
		default:
			s.cur.WriteRune(r)
		}
	}
	return errDoubleQuote
}

// expand reads a parameter expansion after '$'. literal is true when the
// '$' does not start one (it is followed by a blank, a quote or the end).
func (s *splitter) expand() (value string, literal bool, err error) {
	if s.pos == len(s.in) {
		return "", true, nil
	}
	switch r := s.in[s.pos]; {
	case r == '{':
		end := s.pos + 1
		for end < len(s.in) && s.in[end] != '}' {
			end++
		}
		if end == len(s.in) {
			return "", false, errBrace
		}
		name := string(s.in[s.pos+1 : end])
		if !isName(name) {
			return "", false, &ShellSyntaxError{Syntax: "${" + name + "}"}
		}
		s.pos = end + 1
		return s.getenv(name), false, nil
	case isNameRune(r) && !isDigit(r):
		start := s.pos
		for s.pos < len(s.in) && isNameRune(s.in[s.pos]) {
			s.pos++
		}
		return s.getenv(string(s.in[start:s.pos])), false, nil
	case r == '(' || isDigit(r) || strings.ContainsRune("?$!#@*-", r):
		return "", false, &ShellSyntaxError{Syntax: "$" + string(r)}
	default:
		return "", true, nil
	}
}

// addSplit appends an unquoted expansion, splitting it on blanks.
func (s *splitter) addSplit(value string) {
	for _, r := range value {
		if r == ' ' || r == '\t' || r == '\n' {
			s.endWord()
			continue
		}
		s.add(r)
	}
}

// isName reports whether name is a shell variable name.
func isName(name string) bool {
	if name == "" || isDigit(rune(name[0])) {
		return false
	}
	for _, r := range name {
		if !isNameRune(r) {
			return false
		}
	}
	return true
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

func isNameRune(r rune) bool {
	return r == '_' || isDigit(r) || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
}
