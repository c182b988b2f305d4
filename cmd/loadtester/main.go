// Command loadtester is Sluice's load tester: it answers the HTTP API of
// Flagger's loadtester (commands, hey load tests, manual gates) so that
// Canary webhooks written for Flagger keep working. It takes the flags of
// Flagger's loadtester.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/sluicedev/sluice/internal/version"
	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/loadtester"
)

// options are the command's flags.
type options struct {
	port              int
	timeout           time.Duration
	namespaceRegexp   string
	logLevel          string
	zapEncoding       string
	zapReplaceGlobals bool
	version           bool
	allowCommands     bool
	allowedCommands   []string
	authTokenFile     string
	allowedTargets    *hostlist.List
	resolvConf        string
	heyBodyDir        string
	maxJobs           int
	maxLoadDuration   time.Duration
	maxLoadRate       float64
	maxLoadWorkers    int
}

// authTokenEnv holds the bearer token when -auth-token-file is not set.
const authTokenEnv = loadtester.AuthTokenEnv

func main() {
	opts, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "loadtester: %v (see loadtester -h)\n", err)
		os.Exit(2)
	}
	if opts.version {
		fmt.Println(version.String())
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	logger := newLogger(opts, os.Stderr)
	if err := run(ctx, opts, logger); err != nil {
		logger.Error(err, "The load tester failed")
		os.Exit(1)
	}
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("loadtester", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.port, "port", 9090, "Port to serve the API, /healthz and /metrics on; 0 picks a free port.")
	fs.DurationVar(&o.timeout, "timeout", loadtester.DefaultTimeout, "Longest time a command or load test may run.")
	fs.StringVar(&o.namespaceRegexp, "namespace-regexp", "", "Only serve payloads whose namespace matches this regular expression.")
	fs.StringVar(&o.logLevel, "log-level", "info", "Log level: debug, info, warning or error.")
	fs.StringVar(&o.zapEncoding, "zap-encoding", "json", "Log encoding: json or console.")
	fs.BoolVar(&o.zapReplaceGlobals, "zap-replace-globals", false, "Make the logger zap's global logger.")
	fs.BoolVar(&o.version, "version", false, "Print the version and exit.")
	fs.BoolVar(&o.allowCommands, "allow-commands", false, "Run every command a webhook asks for, as Flagger's loadtester does. By default only in-process hey and ghz load tests and the binaries of -allowed-commands run.")
	fs.Func("allowed-commands", "Comma-separated binaries that commands may run, e.g. helm,kubectl,curl,grep: every command of a type cmd line (each side of a pipe or list), bash, helm (helm and helmv3) or kubectl. A line with $VAR, $(...), redirections other than to /dev/null, assignments, & or compound commands needs sh. Allowing sh or bash allows every command.", func(v string) error {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				o.allowedCommands = append(o.allowedCommands, name)
			}
		}
		return nil
	})
	o.allowedTargets = hostlist.MustParse(hostlist.Default)
	fs.Func("allowed-targets", "Comma-separated hosts that hey load tests may send requests to (directly, through -x or by redirect): "+
		"in-cluster (Service names: name, name.namespace, name.namespace.svc[.<cluster domain>], always resolved in the cluster), "+
		"host names (app.example.com), domains (*.example.com), * (any name), IP networks or addresses (10.0.0.0/8). "+
		"Loopback and link-local addresses are refused unless a network lists them. Default "+hostlist.Default+".", func(v string) error {
		l, err := hostlist.Parse(v)
		if err != nil {
			return err
		}
		o.allowedTargets = l
		return nil
	})
	fs.StringVar(&o.resolvConf, "resolv-conf", "/etc/resolv.conf", "resolv.conf whose search line gives the cluster domain and the pod's namespace, for in-cluster target names.")
	fs.StringVar(&o.heyBodyDir, "hey-body-dir", "", "Directory that hey -D may read request bodies from; empty (the default) refuses -D.")
	fs.IntVar(&o.maxJobs, "max-jobs", loadtester.DefaultMaxJobs, "Most commands and load tests running at once; more are answered 429.")
	fs.DurationVar(&o.maxLoadDuration, "max-load-duration", loadtester.DefaultMaxLoadDuration, "Longest hey -z a load test may ask for; longer ones are refused (403).")
	fs.Float64Var(&o.maxLoadRate, "max-load-rate", loadtester.DefaultMaxLoadRate, "Most requests per second of one load test (hey -q times -c); higher ones are refused (403), and a load test without -q is paced at this rate.")
	fs.IntVar(&o.maxLoadWorkers, "max-load-workers", loadtester.DefaultMaxLoadWorkers, "Most workers (hey -c) of one load test; more are refused (403).")
	fs.StringVar(&o.authTokenFile, "auth-token-file", "", "File holding a bearer token that every request but /healthz must send (Authorization: Bearer <token>); read once at start. Without it the token comes from $"+authTokenEnv+", and no token means no auth.")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("parsing flags: %w", err)
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.port < 0 || o.port > 65535:
		return nil, fmt.Errorf("-port %d is not a port", o.port)
	case o.timeout <= 0:
		return nil, fmt.Errorf("-timeout must be positive, got %s", o.timeout)
	case o.maxJobs < 1 || o.maxLoadWorkers < 1:
		return nil, fmt.Errorf("-max-jobs and -max-load-workers must be at least 1, got %d and %d", o.maxJobs, o.maxLoadWorkers)
	case o.maxLoadDuration <= 0 || !(o.maxLoadRate > 0) || math.IsInf(o.maxLoadRate, 0):
		return nil, fmt.Errorf("-max-load-duration and -max-load-rate must be positive, got %s and %g", o.maxLoadDuration, o.maxLoadRate)
	case o.zapEncoding != "json" && o.zapEncoding != "console":
		return nil, fmt.Errorf("-zap-encoding must be json or console, got %q", o.zapEncoding)
	}
	if _, ok := levels[o.logLevel]; !ok {
		return nil, fmt.Errorf("-log-level must be debug, info, warning or error, got %q", o.logLevel)
	}
	if _, err := regexp.Compile(o.namespaceRegexp); err != nil {
		return nil, fmt.Errorf("-namespace-regexp: %w", err)
	}
	return o, nil
}

// run serves the load tester until ctx ends, then stops its commands and
// lets the requests in progress finish.
func run(ctx context.Context, o *options, logger logr.Logger) error {
	token, err := authToken(o.authTokenFile, os.Getenv)
	if err != nil {
		return err
	}
	if o.heyBodyDir != "" {
		if fi, err := os.Stat(o.heyBodyDir); err != nil || !fi.IsDir() {
			return fmt.Errorf("-hey-body-dir %s is not a directory", o.heyBodyDir)
		}
	}
	if dns, err := hostlist.ReadClusterDNS(o.resolvConf); err != nil {
		logger.Info("In-cluster target names resolve through the resolver's search path", "reason", err.Error())
	} else {
		o.allowedTargets.Cluster = dns
	}
	cfg := loadtester.Config{
		Log: logger, Timeout: o.timeout,
		AllowCommands: o.allowCommands, AllowedCommands: o.allowedCommands, AuthToken: token,
		AllowedTargets: o.allowedTargets, BodyDir: o.heyBodyDir, MaxJobs: o.maxJobs,
		MaxLoadDuration: o.maxLoadDuration, MaxLoadRate: o.maxLoadRate, MaxLoadWorkers: o.maxLoadWorkers,
	}
	if o.namespaceRegexp != "" {
		cfg.NamespaceRegexp = regexp.MustCompile(o.namespaceRegexp) // checked by parseFlags
	}
	lt := loadtester.New(cfg)
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(o.port))
	if err != nil {
		return fmt.Errorf("listening on port %d: %w", o.port, err)
	}
	srv := &http.Server{Handler: lt, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	logger.Info("Starting the load tester", "version", version.String(), "address", ln.Addr().String(), "timeout", o.timeout.String(),
		"allowCommands", o.allowCommands, "allowedCommands", o.allowedCommands, "authRequired", token != "",
		"allowedTargets", o.allowedTargets.String(), "clusterDomain", o.allowedTargets.Cluster.Domain, "clusterNamespace", o.allowedTargets.Cluster.Namespace,
		"heyBodyDir", o.heyBodyDir, "maxJobs", o.maxJobs, "maxLoadDuration", o.maxLoadDuration.String(), "maxLoadRate", o.maxLoadRate, "maxLoadWorkers", o.maxLoadWorkers)

	select {
	case err := <-served:
		lt.Close()
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	logger.Info("Shutting down: stopping the commands in progress")
	lt.Close()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutting down the HTTP server: %w", err)
	}
	logger.Info("The load tester stopped")
	return nil
}

// authToken reads the bearer token from file, or from $LOADTESTER_AUTH_TOKEN
// when file is empty; "" means no auth. Blanks around the token (the
// newline ending a file) are dropped; a file without a token is an error,
// so that auth is not turned off by mistake.
func authToken(file string, getenv func(string) string) (string, error) {
	if file == "" {
		return strings.TrimSpace(getenv(authTokenEnv)), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("reading -auth-token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("-auth-token-file %s holds no token", file)
	}
	return token, nil
}
