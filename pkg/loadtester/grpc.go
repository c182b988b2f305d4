package loadtester

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sluicedev/sluice/pkg/hostlist"
)

// healthCheck is the gRPC health checking protocol's Check method, the one
// method whose request the load tester can encode from JSON.
const healthCheck = "/grpc.health.v1.Health/Check"

// isGhz reports whether a command name runs ghz.
func isGhz(name string) bool { return path.Base(name) == "ghz" }

// GRPCLoad is one run of gRPC load, as a ghz command line describes it.
type GRPCLoad struct {
	// Target is the server's host:port.
	Target string
	// Method is the full method name, /package.Service/Method.
	Method string
	// Request is the request message in the protobuf wire format.
	Request []byte
	// Plaintext connects without TLS (ghz --insecure).
	Plaintext bool
	// SkipVerify does not verify the server's certificate (ghz --skipTLS).
	SkipVerify bool
	// Requests, Duration, Workers and Timeout are as in Load.
	Requests int
	Duration time.Duration
	Workers  int
	Timeout  time.Duration
	// QPS limits the requests per second of each worker; 0 means no limit.
	QPS float64
	// Targets, when set, are the only hosts the load may connect to.
	Targets *hostlist.List
}

// GenerateGRPC sends the gRPC load and returns its summary, as Generate.
// gRPC status codes are counted as their HTTP equivalents (OK as 200,
// UNAVAILABLE as 503...), so that results and metrics read the same.
func GenerateGRPC(ctx context.Context, g GRPCLoad, observe Observer) (Result, error) {
	p := pace{requests: g.Requests, workers: g.Workers, duration: g.Duration, qps: g.QPS}
	if err := p.check(); err != nil {
		return Result{}, err
	}
	host, _, err := net.SplitHostPort(g.Target)
	if err != nil {
		return Result{}, fmt.Errorf("the gRPC target %q must be host:port: %w", g.Target, err)
	}
	opts := []grpc.DialOption{grpc.WithUserAgent(userAgent)}
	switch {
	case g.Plaintext:
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
	default:
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{InsecureSkipVerify: g.SkipVerify}))) //nolint:gosec // ghz --skipTLS
	}
	if g.Targets != nil {
		if err := g.Targets.Check(host); err != nil {
			return Result{}, fmt.Errorf("the gRPC target: %w", err)
		}
		dial := g.Targets.Dialer(&net.Dialer{Timeout: 30 * time.Second})
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return dial(ctx, "tcp", addr)
		}))
	}
	conn, err := grpc.NewClient("passthrough:///"+g.Target, opts...)
	if err != nil {
		return Result{}, fmt.Errorf("connecting to %s: %w", g.Target, err)
	}
	defer conn.Close()
	shoot := func(run context.Context) (int, error) {
		ctx := run
		if g.Timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(run, g.Timeout)
			defer cancel()
		}
		req := g.Request
		err := conn.Invoke(ctx, g.Method, &req, &discard{}, grpc.ForceCodecV2(rawCodec{}))
		st, ok := status.FromError(err)
		if !ok || run.Err() != nil {
			return 0, err // no gRPC answer, or the run was stopped
		}
		return httpStatus(st.Code()), nil
	}
	return p.run(ctx, shoot, observe)
}

// httpStatus is the HTTP status of a gRPC code, as the gRPC-HTTP mapping
// of google.rpc.Code has it.
func httpStatus(c codes.Code) int {
	switch c {
	case codes.OK:
		return http.StatusOK
	case codes.InvalidArgument, codes.FailedPrecondition, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.Unauthenticated:
		return http.StatusUnauthorized
	case codes.PermissionDenied:
		return http.StatusForbidden
	case codes.NotFound:
		return http.StatusNotFound
	case codes.AlreadyExists, codes.Aborted:
		return http.StatusConflict
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Canceled:
		return 499 // client closed request
	case codes.Unimplemented:
		return http.StatusNotImplemented
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError // Unknown, Internal, DataLoss
}

// rawCodec sends a request already in the protobuf wire format and
// discards the answer: the load tester reads no .proto file.
type rawCodec struct{}

// discard is an answer nobody reads.
type discard struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, ok := v.(*[]byte)
	if !ok {
		return nil, fmt.Errorf("rawCodec cannot encode %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(*b)}, nil
}

func (rawCodec) Unmarshal(mem.BufferSlice, any) error { return nil }

// Name keeps gRPC's usual content type, application/grpc+proto.
func (rawCodec) Name() string { return "proto" }

// ghzFlags are the flags of ghz the load tester reads.
type ghzFlags struct {
	call, data, proto, protoset, importPaths string
	requests, workers                        int
	qps                                      float64
	duration, timeout                        time.Duration
	plaintext, skipTLS                       bool
}

func (f *ghzFlags) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("ghz", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.call, "call", "", "")
	for _, name := range []string{"d", "data"} {
		fs.StringVar(&f.data, name, "", "")
	}
	for _, name := range []string{"n", "total"} {
		fs.IntVar(&f.requests, name, 200, "")
	}
	for _, name := range []string{"c", "concurrency"} {
		fs.IntVar(&f.workers, name, 50, "")
	}
	for _, name := range []string{"q", "qps", "r", "rps"} {
		fs.Float64Var(&f.qps, name, 0, "")
	}
	for _, name := range []string{"z", "duration"} {
		fs.DurationVar(&f.duration, name, 0, "")
	}
	for _, name := range []string{"t", "timeout"} {
		fs.DurationVar(&f.timeout, name, 20*time.Second, "")
	}
	fs.BoolVar(&f.plaintext, "insecure", false, "")
	fs.BoolVar(&f.skipTLS, "skipTLS", false, "")
	// The schema files are not read: only the calls below need none.
	fs.StringVar(&f.proto, "proto", "", "")
	fs.StringVar(&f.protoset, "protoset", "", "")
	for _, name := range []string{"i", "import-paths"} {
		fs.StringVar(&f.importPaths, name, "", "")
	}
	return fs
}

// parseGhz reads ghz's arguments (the words after "ghz") into a GRPCLoad.
// It supports the calls that need no schema: the health check
// (grpc.health.v1.Health/Check, with -d '{"service": "name"}' or none, the
// default call) and any method with an empty request (-d '{}' or none).
// -q (or -r) is the rate of the whole run, as in ghz.
func parseGhz(args []string) (GRPCLoad, error) {
	var f ghzFlags
	fs := f.flagSet()
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return GRPCLoad{}, errors.New("ghz -h asks for help; give a host:port to load")
		}
		return GRPCLoad{}, fmt.Errorf("parsing ghz's flags: %w", err)
	}
	switch {
	case fs.NArg() == 0:
		return GRPCLoad{}, errors.New("ghz needs a host:port")
	case fs.NArg() > 1:
		return GRPCLoad{}, fmt.Errorf("unexpected argument %q after the host %q; ghz takes its flags before the host", fs.Arg(1), fs.Arg(0))
	case f.workers < 1:
		return GRPCLoad{}, fmt.Errorf("-c must be at least 1, got %d", f.workers)
	case f.duration < 0 || f.timeout < 0 || !(f.qps >= 0) || f.qps > 1e9:
		return GRPCLoad{}, errors.New("-z, -t and -q must be positive numbers")
	case f.duration == 0 && f.requests < f.workers:
		return GRPCLoad{}, fmt.Errorf("-n (%d) cannot be less than -c (%d)", f.requests, f.workers)
	}
	target := fs.Arg(0)
	if host, port, err := net.SplitHostPort(target); err != nil || host == "" || port == "" {
		return GRPCLoad{}, fmt.Errorf("the target %q must be host:port", target)
	}
	method, err := grpcMethod(f.call)
	if err != nil {
		return GRPCLoad{}, err
	}
	req, err := grpcRequest(method, f.data)
	if err != nil {
		return GRPCLoad{}, err
	}
	g := GRPCLoad{
		Target: target, Method: method, Request: req, Plaintext: f.plaintext, SkipVerify: f.skipTLS,
		Requests: f.requests, Duration: f.duration, Workers: f.workers, Timeout: f.timeout, QPS: f.qps / float64(f.workers),
	}
	if f.duration > 0 {
		g.Requests = 0
	}
	return g, nil
}

// grpcMethod reads --call (package.Service.Method or package.Service/Method;
// empty means the health check) as a full method name.
func grpcMethod(call string) (string, error) {
	if call == "" {
		return healthCheck, nil
	}
	c := strings.TrimPrefix(call, "/")
	if !strings.Contains(c, "/") {
		i := strings.LastIndex(c, ".")
		if i < 1 {
			return "", fmt.Errorf("--call %q must be package.Service/Method", call)
		}
		c = c[:i] + "/" + c[i+1:]
	}
	svc, m, _ := strings.Cut(c, "/")
	if svc == "" || m == "" || strings.ContainsAny(m, "/.") {
		return "", fmt.Errorf("--call %q must be package.Service/Method", call)
	}
	return "/" + c, nil
}

// grpcRequest encodes -d for a method: {"service": "..."} for the health
// check, nothing but {} for other methods.
func grpcRequest(method, data string) ([]byte, error) {
	if strings.TrimSpace(data) == "" {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(data), &fields); err != nil {
		return nil, fmt.Errorf("-d must be a JSON object: %w", err)
	}
	if len(fields) == 0 {
		return nil, nil
	}
	if method != healthCheck {
		return nil, fmt.Errorf("-d with fields is supported only for %s: the load tester reads no .proto file, so other calls send an empty request ({})",
			strings.TrimPrefix(healthCheck, "/"))
	}
	var hc struct {
		Service *string `json:"service"`
	}
	if err := json.Unmarshal([]byte(data), &hc); err != nil || len(fields) != 1 || hc.Service == nil {
		return nil, errors.New(`-d for the health check must be {"service": "<name>"}`)
	}
	if *hc.Service == "" {
		return nil, nil
	}
	return protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), *hc.Service), nil
}
