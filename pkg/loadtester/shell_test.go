package loadtester

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCommandLine_ReadsWordsLikeAShellWithoutExpanding(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []string
	}{
		{name: "blanks separate words", line: "  hey\t-z 1m  http://x/ ", want: []string{"hey", "-z", "1m", "http://x/"}},
		{name: "single quotes keep blanks and specials", line: `hey -H 'Cookie: type=insider; $X "y"' u`, want: []string{"hey", "-H", `Cookie: type=insider; $X "y"`, "u"}},
		{name: "double quotes keep blanks", line: `hey -H "Cookie: type=insider" u`, want: []string{"hey", "-H", "Cookie: type=insider", "u"}},
		{name: "double quotes escape quote, backslash and dollar only", line: `a "x\"y\\z\$w\n"`, want: []string{"a", `x"y\z$w\n`}},
		{name: "backslash escapes a blank outside quotes", line: `a b\ c`, want: []string{"a", "b c"}},
		{name: "backslash newline joins lines", line: "a \\\n b", want: []string{"a", "b"}},
		{name: "quotes join with the text around them", line: `-H'a: b'"c"d`, want: []string{"-Ha: bcd"}},
		{name: "empty quotes are an empty word", line: `a '' ""`, want: []string{"a", "", ""}},
		{name: "a hash starting a word is a comment", line: `a b # c d`, want: []string{"a", "b"}},
		{name: "a hash inside a word is literal", line: `http://x/#frag`, want: []string{"http://x/#frag"}},
		{name: "glob characters are literal", line: `hey http://x/?a=1`, want: []string{"hey", "http://x/?a=1"}},
		{name: "a tilde is literal", line: `a ~root ~/x`, want: []string{"a", "~root", "~/x"}},
		{name: "braces are literal", line: `a {b,c}`, want: []string{"a", "{b,c}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCommandLine(tt.line)
			if err != nil {
				t.Fatalf("parseCommandLine(%q) = %v", tt.line, err)
			}
			if got.syntax != "" || got.shellOnly != "" || !slices.Equal(got.words, tt.want) || got.commands[0] != tt.want[0] {
				t.Errorf("parseCommandLine(%q) = %+v, want the words %q", tt.line, got, tt.want)
			}
		})
	}
}

func TestParseCommandLine_FindsEveryCommandAndWhatOnlyAShellCanDo(t *testing.T) {
	tests := []struct {
		line      string
		commands  []string
		syntax    string
		shellOnly string
	}{
		{line: `curl -sd 'test' http://podinfo-canary:9898/token | grep token`, commands: []string{"curl", "grep"}, syntax: "|"},
		{line: "a && b || c; d\ne", commands: []string{"a", "b", "c", "d", "e"}, syntax: "||"},
		{line: "a >/dev/null 2>&1", commands: []string{"a"}, syntax: ">"},
		{line: "! a", commands: []string{"a"}, syntax: "!"},
		{line: "a $HOME", commands: []string{"a"}, shellOnly: "the variable expansion $HOME"},
		{line: `a "${TOKEN}"`, commands: []string{"a"}, shellOnly: "the variable expansion $TOKEN"},
		{line: "$CMD x", commands: []string{""}, shellOnly: "the variable expansion $CMD"},
		{line: "echo $(id)", commands: []string{"echo"}, shellOnly: "command substitution $(...)"},
		{line: "echo `id`", commands: []string{"echo"}, shellOnly: "command substitution $(...)"},
		{line: "echo $((1+2))", commands: []string{"echo"}, shellOnly: "arithmetic expansion $((...))"},
		{line: "a > /tmp/out", commands: []string{"a"}, syntax: ">", shellOnly: "redirection >"},
		{line: "a < /var/run/secrets/kubernetes.io/serviceaccount/token", commands: []string{"a"}, syntax: "<", shellOnly: "redirection <"},
		{line: "a <<EOF\nx\nEOF", commands: []string{"a"}, syntax: "<<", shellOnly: "redirection <<"},
		{line: "LD_PRELOAD=/x.so a", commands: []string{"a"}, shellOnly: "variable assignment LD_PRELOAD="},
		{line: "a &", commands: []string{"a"}, shellOnly: "&"},
		{line: "hey http://x/?a=1&b=2", commands: []string{"hey"}, shellOnly: "&"},
		{line: "a; b", commands: []string{"a", "b"}, syntax: ";"},
		{line: "if a; then b; fi", shellOnly: "if"},
		{line: "(a)", shellOnly: "( )"},
		{line: "f() { a; }; f", commands: []string{"f"}, shellOnly: "function definition"},
		{line: "for i in 1; do a; done", shellOnly: "for"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			got, err := parseCommandLine(tt.line)
			if err != nil {
				t.Fatalf("parseCommandLine(%q) = %v", tt.line, err)
			}
			wantSyntax := tt.syntax
			if wantSyntax == "" {
				wantSyntax = tt.shellOnly
			}
			if !slices.Equal(got.commands, tt.commands) && tt.commands != nil {
				t.Errorf("commands = %q, want %q", got.commands, tt.commands)
			}
			if got.syntax != wantSyntax || got.shellOnly != tt.shellOnly || got.words != nil {
				t.Errorf("got syntax %q, shellOnly %q, words %q; want syntax %q, shellOnly %q, no words", got.syntax, got.shellOnly, got.words, wantSyntax, tt.shellOnly)
			}
		})
	}
}

func TestParseCommandLine_RejectsLinesThatAreNotShell(t *testing.T) {
	for _, line := range []string{`hey -H 'a: b`, `hey -H "a: b`, `echo ${X`, `a |`, `a &&`, `)`, "echo $(id"} {
		if got, err := parseCommandLine(line); err == nil || !strings.Contains(err.Error(), "parsing the command line") {
			t.Errorf("parseCommandLine(%q) = %+v, %v; want a parse error", line, got, err)
		}
	}
}
