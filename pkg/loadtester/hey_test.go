package loadtester

import (
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// heyLoad parses a hey command line as POST / does, before the policy.
func heyLoad(t *testing.T, line string) (Load, error) {
	t.Helper()
	h, err := heyCmd(t, line)
	if h.bodyFile != "" {
		t.Errorf("%q: unexpected -D %s", line, h.bodyFile)
	}
	return h.load, err
}

func heyCmd(t *testing.T, line string) (heyCommand, error) {
	t.Helper()
	c, err := parseCommandLine(line)
	if err != nil {
		return heyCommand{}, err
	}
	if c.words == nil || !isHey(c.words[0]) {
		t.Fatalf("%q is not one hey command", line)
	}
	return parseHey(c.words[1:])
}

func header(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i < len(kv); i += 2 {
		h.Add(kv[i], kv[i+1])
	}
	return h
}

func TestParseHey_ReadsEveryFlagWithHeysDefaults(t *testing.T) {
	defaults := func(l Load) Load {
		if l.Method == "" {
			l.Method = "GET"
		}
		if l.Workers == 0 {
			l.Workers = 50
		}
		if l.Timeout == 0 {
			l.Timeout = 20 * time.Second
		}
		if l.Header == nil {
			l.Header = header("Content-Type", "text/html", "User-Agent", "hey/0.0.1")
		}
		if l.Body == nil {
			l.Body = []byte{}
		}
		return l
	}
	tests := []struct {
		name string
		line string
		want Load
	}{
		{name: "defaults: 200 requests by 50 workers", line: "hey http://podinfo.test:9898/", want: Load{URL: "http://podinfo.test:9898/", Requests: 200}},
		{name: "Flagger's usual load test", line: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/",
			want: Load{URL: "http://podinfo-canary.test:9898/", Duration: time.Minute, QPS: 10, Workers: 2}},
		{name: "-n and -c", line: "hey -n 50 -c 5 http://x/", want: Load{URL: "http://x/", Requests: 50, Workers: 5}},
		{name: "-z wins over -n", line: "hey -n 10 -c 20 -z 30s http://x/", want: Load{URL: "http://x/", Duration: 30 * time.Second, Workers: 20}},
		{name: "quoted repeated headers", line: `hey -n 1 -c 1 -H 'Cookie: type=insider' -H "X-Canary: always" http://x/`,
			want: Load{URL: "http://x/", Requests: 1, Workers: 1, Header: header("Content-Type", "text/html", "User-Agent", "hey/0.0.1", "Cookie", "type=insider", "X-Canary", "always")}},
		{name: "method, body, content type, accept, timeout", line: `hey -n 1 -c 1 -m post -d '{"a":1}' -T application/json -A application/json -t 5 https://x:8443/api`,
			want: Load{URL: "https://x:8443/api", Requests: 1, Workers: 1, Method: "POST", Body: []byte(`{"a":1}`), Timeout: 5 * time.Second,
				Header: header("Content-Type", "application/json", "Accept", "application/json", "User-Agent", "hey/0.0.1")}},
		{name: "-host sets the Host header", line: "hey -n 1 -c 1 -host app.example.com http://10.0.0.1/", want: Load{URL: "http://10.0.0.1/", Requests: 1, Workers: 1, Host: "app.example.com"}},
		{name: "-H Host sets the Host header", line: "hey -n 1 -c 1 -H 'Host: app.example.com' http://10.0.0.1/", want: Load{URL: "http://10.0.0.1/", Requests: 1, Workers: 1, Host: "app.example.com"}},
		{name: "basic auth and user agent", line: "hey -n 1 -c 1 -a user:pw -U probe http://x/", want: Load{URL: "http://x/", Requests: 1, Workers: 1,
			Header: header("Content-Type", "text/html", "Authorization", "Basic dXNlcjpwdw==", "User-Agent", "probe hey/0.0.1")}},
		// In this table Timeout -1 stands for 0, which the defaults would replace.
		{name: "-t 0 means no request timeout", line: "hey -n 1 -c 1 -t 0 http://x/", want: Load{URL: "http://x/", Requests: 1, Workers: 1, Timeout: -1}},
		{name: "connection flags, -cpus", line: "hey -n 1 -c 1 -h2 -disable-compression -disable-keepalive -disable-redirects -cpus 2 http://x/",
			want: Load{URL: "http://x/", Requests: 1, Workers: 1, HTTP2: true, DisableCompression: true, DisableKeepAlives: true, DisableRedirects: true}},
		{name: "flags with = and double dashes, as Go's flag package", line: "hey --z=10s -c=3 http://x/", want: Load{URL: "http://x/", Duration: 10 * time.Second, Workers: 3}},
		{name: "a hey binary path", line: "/usr/local/bin/hey -n 1 -c 1 http://x/", want: Load{URL: "http://x/", Requests: 1, Workers: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := heyLoad(t, tt.line)
			if err != nil {
				t.Fatalf("parsing %q: %v", tt.line, err)
			}
			want := defaults(tt.want)
			if want.Timeout < 0 {
				want.Timeout = 0
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parsing %q:\n got %+v\nwant %+v", tt.line, got, want)
			}
		})
	}
}

func TestParseHey_KeepsTheBodyFileForThePolicy(t *testing.T) {
	h, err := heyCmd(t, "hey -n 1 -c 1 -m POST -D /var/run/secrets/kubernetes.io/serviceaccount/token http://x/")
	if err != nil {
		t.Fatal(err)
	}
	if h.bodyFile != "/var/run/secrets/kubernetes.io/serviceaccount/token" || len(h.load.Body) != 0 {
		t.Errorf("bodyFile %q, body %q: the parser must not read the file", h.bodyFile, h.load.Body)
	}
}

func TestParseHey_ProxyFlagSetsTheProxy(t *testing.T) {
	l, err := heyLoad(t, "hey -n 1 -c 1 -x proxy.local:3128 http://x/")
	if err != nil {
		t.Fatal(err)
	}
	if l.Proxy == nil || l.Proxy.String() != "http://proxy.local:3128" {
		t.Errorf("Proxy = %v, want http://proxy.local:3128", l.Proxy)
	}
}

func TestParseHey_RejectsMalformedCommandLines(t *testing.T) {
	tests := []struct {
		name, line, wantErr string
	}{
		{name: "no URL", line: "hey -z 1m", wantErr: "hey needs a URL"},
		{name: "unknown flag", line: "hey -k http://x/", wantErr: "flag provided but not defined: -k"},
		{name: "flag without a value", line: "hey -n", wantErr: "flag needs an argument: -n"},
		{name: "flags after the URL", line: "hey http://x/ -z 1m", wantErr: `unexpected argument "-z"`},
		{name: "bad duration", line: "hey -z forever http://x/", wantErr: `invalid value "forever" for flag -z`},
		{name: "bad number", line: "hey -n many http://x/", wantErr: `invalid value "many" for flag -n`},
		{name: "fewer requests than workers", line: "hey -n 2 -c 5 http://x/", wantErr: "-n (2) cannot be less than -c (5)"},
		{name: "no workers", line: "hey -c 0 -z 1s http://x/", wantErr: "-c must be at least 1"},
		{name: "no requests", line: "hey -n 0 -c 0 http://x/", wantErr: "-c must be at least 1"},
		{name: "negative rate", line: "hey -q -1 http://x/", wantErr: "cannot be negative"},
		{name: "header without a colon", line: "hey -H nocolon http://x/", wantErr: `-H "nocolon" must be "Name: value"`},
		{name: "basic auth without a colon", line: "hey -a user http://x/", wantErr: "must be user:password"},
		{name: "CSV output", line: "hey -o csv http://x/", wantErr: "hey -o csv is not supported"},
		{name: "relative URL", line: "hey /path", wantErr: "must be an absolute http or https URL"},
		{name: "other scheme", line: "hey ftp://x/", wantErr: "must be an absolute http or https URL"},
		{name: "help", line: "hey -h", wantErr: "asks for help"},
		{name: "unterminated quote", line: "hey -H 'Cookie: a http://x/", wantErr: "reached EOF without closing quote"},
		{name: "user and password in the URL", line: "hey http://user:pw@x/", wantErr: "must not carry a user and password"},
		{name: "proxy with a path", line: "hey -x proxy:3128/path http://x/", wantErr: "must be host:port"},
		{name: "rate not a number", line: "hey -q NaN http://x/", wantErr: "-q must be a number"},
		{name: "infinite rate", line: "hey -q +Inf http://x/", wantErr: "-q must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := heyLoad(t, tt.line)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("parsing %q = %v, want an error containing %q", tt.line, err, tt.wantErr)
			}
		})
	}
}
