package hostlist

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCheck_AllowsOnlyTheListedHosts(t *testing.T) {
	tests := []struct {
		spec    string
		allowed []string
		refused []string
	}{
		{spec: Default,
			allowed: []string{"podinfo", "podinfo-canary.test", "podinfo.test.svc", "podinfo.test.svc.cluster.local", "PodInfo.Test.", "example.com"},
			refused: []string{"app.example.com", "a.b.svc.other.local", "podinfo.test.svc.cluster.local.evil.com", "10.0.0.1", "127.0.0.1", "::1",
				"169.254.169.254", "under_score", "a.svc", "", "-bad"}},
		{spec: "10.0.0.0/8, 192.0.2.7, fd00::/8",
			allowed: []string{"10.1.2.3", "192.0.2.7", "[fd00::1]", "::ffff:10.0.0.1"},
			refused: []string{"11.0.0.1", "192.0.2.8", "podinfo", "fe80::1"}},
		{spec: "app.example.com,*.corp.example",
			allowed: []string{"app.example.com", "APP.example.com.", "a.corp.example", "a.b.corp.example"},
			refused: []string{"corp.example", "www.example.com", "podinfo.test", "evilcorp.example"}},
		{spec: "*", allowed: []string{"anything.example.org", "podinfo"}, refused: []string{"10.0.0.1"}},
		{spec: "", refused: []string{"podinfo", "10.0.0.1"}},
	}
	for _, tt := range tests {
		l, err := Parse(tt.spec)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.spec, err)
		}
		for _, h := range tt.allowed {
			if err := l.Check(h); err != nil {
				t.Errorf("%q: Check(%q) = %v, want allowed", tt.spec, h, err)
			}
		}
		for _, h := range tt.refused {
			if err := l.Check(h); err == nil {
				t.Errorf("%q: Check(%q) allowed, want refused", tt.spec, h)
			}
		}
	}
	var nilList *List
	if !nilList.Allows("podinfo.test") || nilList.Allows("app.example.com") || nilList.String() != Default {
		t.Error("a nil list is not the default list")
	}
}

func TestCheck_ExplainsTheRefusal(t *testing.T) {
	l := MustParse("in-cluster,10.0.0.0/8")
	for host, want := range map[string]string{
		"app.example.com": "the host app.example.com is not allowed (allowed: in-cluster,10.0.0.0/8)",
		"127.0.0.1":       "the IP address 127.0.0.1 is not in an allowed network",
	} {
		if err := l.Check(host); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Check(%q) = %v, want %q", host, err, want)
		}
	}
}

func TestParse_RejectsMalformedEntries(t *testing.T) {
	for _, spec := range []string{"10.0.0.0/33", "not a host", "*.", "*.-x", "in_cluster", "a..b"} {
		if _, err := Parse(spec); err == nil {
			t.Errorf("Parse(%q) succeeded, want an error", spec)
		}
	}
	l, err := Parse(" in-cluster , ,10.0.0.0/8 ")
	if err != nil || l.String() != "in-cluster,10.0.0.0/8" {
		t.Errorf("Parse = %v, %v", l, err)
	}
}

func TestDialHost_ResolvesServiceNamesInTheClusterOnly(t *testing.T) {
	l := MustParse("in-cluster,app.example.com")
	l.Cluster = ClusterDNS{Domain: "corp.local", Namespace: "loadtest"}
	for host, want := range map[string]string{
		"podinfo":                        "podinfo.loadtest.svc.corp.local.",
		"podinfo.test":                   "podinfo.test.svc.corp.local.",
		"example.com":                    "example.com.svc.corp.local.", // a Service "example" in namespace "com", never the outside host
		"podinfo.test.svc":               "podinfo.test.svc.corp.local.",
		"podinfo.test.svc.corp.local":    "podinfo.test.svc.corp.local.",
		"app.example.com":                "app.example.com",
		"10.0.0.1":                       "10.0.0.1",
		"podinfo.test.svc.cluster.local": "podinfo.test.svc.cluster.local", // not this cluster's domain: refused by Check
	} {
		if got := l.DialHost(host); got != want {
			t.Errorf("DialHost(%q) = %q, want %q", host, got, want)
		}
	}
	l.Cluster = ClusterDNS{}
	if got := l.DialHost("podinfo"); got != "podinfo" {
		t.Errorf("without a namespace DialHost(podinfo) = %q, want it unchanged", got)
	}
	if got := l.DialHost("podinfo.test"); got != "podinfo.test.svc.cluster.local." {
		t.Errorf("with the default domain DialHost(podinfo.test) = %q", got)
	}
}

func TestDialer_RefusesLoopbackUnlessANetworkAllowsIt(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	get := func(spec, host string) error {
		tr := &http.Transport{DialContext: MustParse(spec).Dialer(&net.Dialer{Timeout: 5 * time.Second})}
		defer tr.CloseIdleConnections()
		resp, err := (&http.Client{Transport: tr}).Get("http://" + net.JoinHostPort(host, port) + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	tests := []struct {
		spec, host string
		wantErr    string
	}{
		{spec: "*", host: "localhost", wantErr: "connecting to 127.0.0.1 refused"},
		{spec: "localhost", host: "localhost", wantErr: "refused: loopback"},
		{spec: Default, host: "127.0.0.1", wantErr: "not in an allowed network"},
		{spec: "127.0.0.0/8", host: "127.0.0.1"},
		{spec: "localhost,127.0.0.1", host: "localhost"},
	}
	for _, tt := range tests {
		err := get(tt.spec, tt.host)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%s with %q: %v, want success", tt.host, tt.spec, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%s with %q: %v, want an error containing %q", tt.host, tt.spec, err, tt.wantErr)
		}
	}
}

func TestDialer_DialsTheServicesFullName(t *testing.T) {
	l := MustParse(Default)
	l.Cluster = ClusterDNS{Domain: "cluster.local", Namespace: "test"}
	var dialed string
	d := &net.Dialer{Resolver: &net.Resolver{PreferGo: true, Dial: func(_ context.Context, _, _ string) (net.Conn, error) {
		return nil, &net.DNSError{Err: "no DNS in tests", IsNotFound: true}
	}}}
	_, err := l.Dialer(d)(context.Background(), "tcp", "podinfo-canary:9898")
	if err == nil {
		t.Fatal("dialing without DNS succeeded")
	}
	if dnsErr := (*net.DNSError)(nil); !errors.As(err, &dnsErr) {
		t.Fatalf("dial error %v, want a DNS error", err)
	} else {
		dialed = dnsErr.Name
	}
	if dialed != "podinfo-canary.test.svc.cluster.local." && dialed != "podinfo-canary.test.svc.cluster.local" {
		t.Errorf("looked up %q, want the Service's full name", dialed)
	}
}

func TestReadClusterDNS_ReadsTheSearchLine(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		content string
		want    ClusterDNS
	}{
		{"nameserver 10.96.0.10\nsearch test.svc.cluster.local svc.cluster.local cluster.local\noptions ndots:5\n",
			ClusterDNS{Domain: "cluster.local", Namespace: "test"}},
		{"search prod.svc.corp.internal. svc.corp.internal corp.internal c.project.internal\n", ClusterDNS{Domain: "corp.internal", Namespace: "prod"}},
		{"nameserver 1.1.1.1\nsearch example.org\n", ClusterDNS{}},
	}
	for i, tt := range tests {
		p := filepath.Join(dir, "resolv.conf")
		if err := os.WriteFile(p, []byte(tt.content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := ReadClusterDNS(p)
		if err != nil || got != tt.want {
			t.Errorf("%d: ReadClusterDNS = %+v, %v; want %+v", i, got, err, tt.want)
		}
	}
	if _, err := ReadClusterDNS(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file gave no error")
	}
}
