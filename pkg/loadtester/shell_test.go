package loadtester

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestShellWords_SplitsLikeAShell(t *testing.T) {
	env := map[string]string{"TOKEN": "s3cr3t", "TWO": "a b", "EMPTY": ""}
	getenv := func(k string) string { return env[k] }
	tests := []struct {
		name string
		line string
		want []string
	}{
		{name: "blanks separate words", line: "  hey\t-z 1m \n http://x/ ", want: []string{"hey", "-z", "1m", "http://x/"}},
		{name: "single quotes keep blanks and specials", line: `hey -H 'Cookie: type=insider; $X "y"' u`, want: []string{"hey", "-H", `Cookie: type=insider; $X "y"`, "u"}},
		{name: "double quotes keep blanks", line: `hey -H "Cookie: type=insider" u`, want: []string{"hey", "-H", "Cookie: type=insider", "u"}},
		{name: "double quotes escape quote, backslash and dollar only", line: `a "x\"y\\z\$w\n"`, want: []string{"a", `x"y\z$w\n`}},
		{name: "backslash escapes a blank outside quotes", line: `a b\ c`, want: []string{"a", "b c"}},
		{name: "backslash newline joins lines", line: "a \\\n b", want: []string{"a", "b"}},
		{name: "quotes join with the text around them", line: `-H'a: b'"c"d`, want: []string{"-Ha: bcd"}},
		{name: "empty quotes are an empty word", line: `a '' ""`, want: []string{"a", "", ""}},
		{name: "variables expand in double quotes", line: `hey -H "Authorization: Bearer $TOKEN" u`, want: []string{"hey", "-H", "Authorization: Bearer s3cr3t", "u"}},
		{name: "braced variables expand", line: `x=${TOKEN}y`, want: []string{"x=s3cr3ty"}},
		{name: "unquoted expansion is split on blanks", line: `a $TWO`, want: []string{"a", "a", "b"}},
		{name: "quoted expansion is one word", line: `a "$TWO"`, want: []string{"a", "a b"}},
		{name: "an empty unquoted expansion is no word", line: `a $EMPTY b`, want: []string{"a", "b"}},
		{name: "an unset variable is empty", line: `a "$UNSET"`, want: []string{"a", ""}},
		{name: "a lone dollar is literal", line: `a $ "$"`, want: []string{"a", "$", "$"}},
		{name: "a hash starting a word is a comment", line: `a b # c d`, want: []string{"a", "b"}},
		{name: "a hash inside a word is literal", line: `http://x/#frag`, want: []string{"http://x/#frag"}},
		{name: "glob characters are literal", line: `hey http://x/?a=1`, want: []string{"hey", "http://x/?a=1"}},
		{name: "empty line", line: "   ", want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shellWords(tt.line, getenv)
			if err != nil {
				t.Fatalf("shellWords(%q) = %v", tt.line, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("shellWords(%q) = %q, want %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestShellWords_RejectsMalformedLinesAndShellSyntax(t *testing.T) {
	tests := []struct {
		line    string
		syntax  string // a *ShellSyntaxError with this construct
		wantErr string // otherwise an error containing this
	}{
		{line: `hey -H 'a: b`, wantErr: "unterminated single quote"},
		{line: `hey -H "a: b`, wantErr: "unterminated double quote"},
		{line: `hey u \`, wantErr: "ends with a backslash"},
		{line: `echo ${X`, wantErr: "unterminated ${"},
		{line: `hey http://x/?a=1&b=2`, syntax: "&"},
		{line: `hey u | tee out`, syntax: "|"},
		{line: `a; b`, syntax: ";"},
		{line: `hey u > out`, syntax: ">"},
		{line: `echo $(date)`, syntax: "$("},
		{line: "echo `date`", syntax: "`"},
		{line: "echo \"`date`\"", syntax: "`"},
		{line: `echo $1`, syntax: "$1"},
		{line: `echo ${X:-y}`, syntax: "${X:-y}"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			_, err := shellWords(tt.line, func(string) string { return "" })
			var syntax *ShellSyntaxError
			switch {
			case err == nil:
				t.Fatalf("shellWords(%q) succeeded, want an error", tt.line)
			case tt.syntax != "":
				if !errors.As(err, &syntax) || syntax.Syntax != tt.syntax {
					t.Errorf("shellWords(%q) = %v, want shell syntax %q", tt.line, err, tt.syntax)
				}
			case errors.As(err, &syntax) || !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("shellWords(%q) = %v, want %q", tt.line, err, tt.wantErr)
			}
		})
	}
}
