package loadtester

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/sluicedev/sluice/pkg/hostlist"
)

// grpcTarget serves the gRPC health service on loopback, with "podinfo"
// serving.
func grpcTarget(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	hs.SetServingStatus("podinfo", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, hs)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)
	return ln.Addr().String()
}

func TestParseGhz_ReadsFlaggersCommandLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line string
		want GRPCLoad
	}{
		{line: "ghz -z 1m -q 10 -c 2 --insecure podinfo.test:9898",
			want: GRPCLoad{Target: "podinfo.test:9898", Method: healthCheck, Plaintext: true, Duration: time.Minute, Workers: 2, QPS: 5, Timeout: 20 * time.Second}},
		{line: `ghz --insecure --proto=/tmp/ghz/health.proto --call=grpc.health.v1.Health/Check -d '{"service":"podinfo"}' -n 100 -c 10 podinfo-canary.test:9999`,
			want: GRPCLoad{Target: "podinfo-canary.test:9999", Method: healthCheck, Request: []byte("\x0a\x07podinfo"), Plaintext: true, Requests: 100, Workers: 10, Timeout: 20 * time.Second}},
		{line: "ghz --skipTLS --call helloworld.Greeter.SayHello -d {} --total 4 --concurrency 2 --rps 8 -t 1s greeter:443",
			want: GRPCLoad{Target: "greeter:443", Method: "/helloworld.Greeter/SayHello", SkipVerify: true, Requests: 4, Workers: 2, QPS: 4, Timeout: time.Second}},
	}
	for _, tt := range tests {
		c, err := parseCommandLine(tt.line)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseGhz(c.words[1:])
		if err != nil {
			t.Errorf("%s: %v", tt.line, err)
			continue
		}
		if got.Target != tt.want.Target || got.Method != tt.want.Method || string(got.Request) != string(tt.want.Request) ||
			got.Plaintext != tt.want.Plaintext || got.SkipVerify != tt.want.SkipVerify || got.Requests != tt.want.Requests ||
			got.Duration != tt.want.Duration || got.Workers != tt.want.Workers || got.QPS != tt.want.QPS || got.Timeout != tt.want.Timeout {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.line, got, tt.want)
		}
	}
	for line, wantErr := range map[string]string{
		"ghz --insecure":                             "needs a host:port",
		"ghz --insecure podinfo":                     "must be host:port",
		"ghz --call x.Y/Z -d '{\"name\":\"a\"}' h:1": "supported only for grpc.health.v1.Health/Check",
		"ghz -d '{\"svc\":\"a\"}' h:1":               `must be {"service": "<name>"}`,
		"ghz --call Method h:1":                      "must be package.Service/Method",
		"ghz -n 1 -c 2 h:1":                          "-n (1) cannot be less than -c (2)",
		"ghz -q NaN h:1":                             "must be positive numbers",
		"ghz --cert /var/run/secrets/x h:1":          "flag provided but not defined: -cert",
		"ghz --insecure h:1 -n 5":                    "unexpected argument",
	} {
		c, err := parseCommandLine(line)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseGhz(c.words[1:]); err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Errorf("%s = %v, want %q", line, err, wantErr)
		}
	}
}

func TestGenerateGRPC_CountsAnswersByStatus(t *testing.T) {
	t.Parallel()
	addr := grpcTarget(t)
	base := GRPCLoad{Target: addr, Plaintext: true, Requests: 10, Workers: 2, Timeout: 5 * time.Second, Targets: testTargets}
	tests := []struct {
		name   string
		method string
		req    []byte
		code   int
	}{
		{name: "the server's health", method: healthCheck, code: http.StatusOK},
		{name: "a serving service", method: healthCheck, req: []byte("\x0a\x07podinfo"), code: http.StatusOK},
		{name: "an unknown service", method: healthCheck, req: []byte("\x0a\x07unknown"), code: http.StatusNotFound},
		{name: "an unknown method", method: "/helloworld.Greeter/SayHello", code: http.StatusNotImplemented},
	}
	for _, tt := range tests {
		g := base
		g.Method, g.Request = tt.method, tt.req
		res, err := GenerateGRPC(context.Background(), g, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if res.Requests != 10 || res.Codes[tt.code] != 10 {
			t.Errorf("%s: %+v, want 10 answers %d", tt.name, res, tt.code)
		}
	}
	g := base
	g.Method, g.Targets = healthCheck, hostlist.MustParse(hostlist.Default)
	if _, err := GenerateGRPC(context.Background(), g, nil); err == nil || !strings.Contains(err.Error(), "not in an allowed network") {
		t.Errorf("a target outside the allow-list = %v", err)
	}
}

func TestPostCmd_RunsGhzInProcessWithinThePolicy(t *testing.T) {
	t.Parallel()
	addr := grpcTarget(t)
	s, ts := newTestServer(t, Config{MaxLoadWorkers: 4})
	status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": `ghz --insecure --call grpc.health.v1.Health/Check -d '{"service":"podinfo"}' -n 12 -c 3 ` + addr}))
	if status != http.StatusAccepted {
		t.Fatalf("POST = %d %q, want 202", status, body)
	}
	eventually(t, "the gRPC load test to end", func() bool { return s.runs.running() == 0 })
	page := metricsText(t, ts.URL)
	for _, want := range []string{
		`sluice_loadtester_commands_total{canary="podinfo",namespace="test",result="succeeded",type="ghz"} 1`,
		`sluice_loadtester_requests_total{canary="podinfo",code="200",namespace="test"} 12`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for cmd, want := range map[string]string{
		"ghz --insecure -n 10 -c 5 " + addr:                    "ghz -c 5 asks for more workers than this load tester allows (-max-load-workers=4)",
		"ghz --insecure -n 1 -c 1 10.0.0.1:9999":               "the IP address 10.0.0.1 is not in an allowed network",
		"ghz --insecure -n 1 -c 1 metadata.google.internal:80": "the host metadata.google.internal is not allowed",
	} {
		if status, body := post(t, ts.URL+"/", cmdPayload("podinfo", "test", map[string]string{"cmd": cmd})); status != http.StatusForbidden || !strings.Contains(body, want) {
			t.Errorf("%s = %d %q, want 403 containing %q", cmd, status, body, want)
		}
	}
}
