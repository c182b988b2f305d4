package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/util/validation"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/webhook/token"
)

// DefaultThreadiness is the default of -threadiness, Flagger's being 2.
// Sluice's reconciles do not call webhooks or metric servers (those run in
// the background) but they wait on API round trips; the scale benchmark
// measured the steps of 100 Canaries falling due at the same moment up to
// 3.6 s late behind 2 workers (mean reconcile 22 ms on a loaded 2-core
// machine). The work of one Canary is still serialised.
const DefaultThreadiness = 16

// Options are the manager's settings, read from Flagger's command-line flags
// (single dash, same names and defaults but -threadiness) and a few
// environment variables.
type Options struct {
	// Kubeconfig is the path of a kubeconfig; empty means KUBECONFIG, the
	// in-cluster config or ~/.kube/config, in that order.
	Kubeconfig string
	// Master is the API server's address; it overrides the kubeconfig's.
	Master string
	// KubeconfigQPS is the client's sustained request rate, per second.
	KubeconfigQPS int
	// KubeconfigBurst is the client's request burst.
	KubeconfigBurst int
	// KubeconfigServiceMesh is the kubeconfig of the cluster running the
	// service mesh control plane, where the routing objects of the mesh
	// providers are written; empty means the workloads' cluster.
	KubeconfigServiceMesh string

	// MetricsServer is the default Prometheus URL of the builtin metrics.
	MetricsServer string
	// MeshProvider is the default traffic provider: one of Flagger's provider
	// names; a bare "gatewayapi" is read as "gatewayapi:v1" (Flagger fell
	// back to Istio for it).
	MeshProvider string
	// Namespace, when set, is the only namespace watched.
	Namespace string
	// SelectorLabels are the pod labels, comma-separated, that select a
	// workload's pods.
	SelectorLabels string
	// IncludeLabelPrefix lists, comma-separated, the label prefixes copied
	// from the target workload to the primary.
	IncludeLabelPrefix string
	// EnableConfigTracking turns on ConfigMap and Secret tracking.
	EnableConfigTracking bool
	// IngressAnnotationsPrefix is the annotation prefix of the NGINX router.
	IngressAnnotationsPrefix string
	// IngressClass is the ingress class of Contour HTTPProxy objects.
	IngressClass string

	// EnableLeaderElection makes only the elected replica reconcile.
	EnableLeaderElection bool
	// LeaderElectionNamespace holds the Lease; Namespace wins when set.
	LeaderElectionNamespace string
	// AllowRunningFlagger lets Sluice act on Canaries while a Flagger
	// controller runs in the cluster.
	AllowRunningFlagger bool

	// SlackURL is the Slack webhook URL (env SLACK_URL wins).
	SlackURL string
	// SlackToken is the Slack bot token (env SLACK_TOKEN wins).
	SlackToken string
	// SlackProxyURL is the proxy for Slack (env SLACK_PROXY_URL wins).
	SlackProxyURL string
	// SlackChannel is the Slack channel.
	SlackChannel string
	// SlackUser is the Slack user name.
	SlackUser string
	// MSTeamsURL is the MS Teams webhook URL (env MSTEAMS_URL wins).
	MSTeamsURL string
	// MSTeamsProxyURL is the proxy for MS Teams (env MSTEAMS_PROXY_URL wins).
	MSTeamsProxyURL string
	// EventWebhook receives every Canary event (env EVENT_WEBHOOK_URL wins).
	EventWebhook string
	// ClusterName is added to alerts.
	ClusterName string
	// NoCrossNamespaceRefs forbids references to other namespaces.
	NoCrossNamespaceRefs bool
	// WebhookTokenSecret names the Secret (namespace/name) whose key
	// "token" is sent as a bearer token to the webhooks of
	// WebhookTokenHosts; empty sends none.
	WebhookTokenSecret string
	// WebhookTokenHosts are the webhook hosts that receive the token, as a
	// hostlist allow-list.
	WebhookTokenHosts string

	// Threadiness is the number of Canaries reconciled at the same time.
	Threadiness int
	// MaxConcurrentCanaries caps the analyses running at once; 0 means no cap.
	MaxConcurrentCanaries int
	// Port serves /metrics, /healthz and /readyz.
	Port string
	// LogLevel is debug, info, warning (or warn) or error.
	LogLevel string
	// ZapEncoding is json or console.
	ZapEncoding string
	// Version asks to print the version and exit.
	Version bool
	// ControlLoopInterval is Flagger's scheduler tick. Sluice has no global
	// tick: each Canary is requeued at its own analysis time.
	ControlLoopInterval time.Duration
	// ZapReplaceGlobals installs the logger as zap's global logger.
	ZapReplaceGlobals bool

	// fs is the flag set the options were parsed with, for the not-yet-wired
	// warnings.
	fs *flag.FlagSet
}

// FlagRow describes one flag of the manager, for its documentation.
type FlagRow struct {
	// Name is the flag's name without the dash.
	Name string
	// Default is the default value as the flag package prints it.
	Default string
	// Wired is true when Sluice acts on the flag; false when it is parsed
	// for compatibility with Flagger but has no effect yet.
	Wired bool
	// Description is one line saying what the flag does.
	Description string
	// NotWiredReason says, for a flag that is not wired, what is missing.
	NotWiredReason string
}

// notWired maps each flag that is parsed but not acted on yet to what is
// missing. Remove a flag from here in the change that wires it.
var notWired = map[string]string{
	"control-loop-interval": "Sluice requeues each Canary at its own analysis interval, so there is no loop to tune",
}

// meshProviders are the accepted -mesh-provider values: Flagger's provider
// names, plus "gatewayapi", which Sluice reads as gatewayapi:v1.
var meshProviders = []string{
	flaggerv1beta1.ProviderAPISIX,
	flaggerv1beta1.ProviderAppMesh,
	flaggerv1beta1.ProviderAppMeshV1beta2,
	flaggerv1beta1.ProviderContour,
	"gatewayapi",
	flaggerv1beta1.ProviderGatewayAPIV1,
	flaggerv1beta1.ProviderGatewayAPIV1beta1,
	flaggerv1beta1.ProviderGloo,
	flaggerv1beta1.ProviderIstio,
	flaggerv1beta1.ProviderKnative,
	flaggerv1beta1.ProviderKubernetes,
	flaggerv1beta1.ProviderKuma,
	flaggerv1beta1.ProviderLinkerd,
	flaggerv1beta1.ProviderNGINX,
	flaggerv1beta1.ProviderOSM,
	flaggerv1beta1.ProviderSkipper,
	flaggerv1beta1.ProviderSMIV1alpha1,
	flaggerv1beta1.ProviderSMIV1alpha2,
	flaggerv1beta1.ProviderSMIV1alpha3,
	flaggerv1beta1.ProviderTraefik,
}

// logLevels are the accepted -log-level values.
var logLevels = []string{"debug", "info", "warning", "warn", "error"}

// newFlagSet registers the manager's flags on a private flag set bound to o.
// It is private so that it does not clash with the "kubeconfig" flag that
// controller-runtime registers on flag.CommandLine.
func newFlagSet(o *Options) *flag.FlagSet {
	fs := flag.NewFlagSet("sluice", flag.ContinueOnError)
	fs.StringVar(&o.Kubeconfig, "kubeconfig", "", "Kubeconfig file to reach the cluster with; empty uses KUBECONFIG, the in-cluster config or ~/.kube/config.")
	fs.StringVar(&o.Master, "master", "", "API server address; it replaces the server named in the kubeconfig.")
	fs.IntVar(&o.KubeconfigQPS, "kubeconfig-qps", 100, "Sustained rate of requests to the API server, per second, enforced on the client side.")
	fs.IntVar(&o.KubeconfigBurst, "kubeconfig-burst", 250, "Requests the client may send at once above -kubeconfig-qps.")
	fs.StringVar(&o.KubeconfigServiceMesh, "kubeconfig-service-mesh", "", "Kubeconfig of the service mesh's cluster, when it is not the workloads' cluster: the mesh providers' routing objects are written there, owned through the annotation sluice.flagger.app/canary; Services, Ingresses and Knative Services stay in the workloads' cluster.")
	fs.StringVar(&o.MetricsServer, "metrics-server", "http://prometheus:9090", "Prometheus-compatible server that answers the builtin metric queries, unless a Canary sets spec.metricsServer.")
	fs.StringVar(&o.MeshProvider, "mesh-provider", "istio", "Traffic provider of Canaries without spec.provider: "+strings.Join(meshProviders, ", ")+"; an SMI version may name its mesh (smi:v1alpha3:linkerd); a bare gatewayapi is read as gatewayapi:v1. A Canary whose provider Sluice cannot route is reported as not supported.")
	fs.StringVar(&o.Namespace, "namespace", "", "Namespace that Sluice watches for Canaries; empty means all namespaces.")
	fs.StringVar(&o.SelectorLabels, "selector-labels", "app,name,app.kubernetes.io/name", "Comma-separated pod labels that select a workload's pods.")
	fs.StringVar(&o.IncludeLabelPrefix, "include-label-prefix", "", "Comma-separated label prefixes copied from the target workload to the primary.")
	fs.BoolVar(&o.EnableConfigTracking, "enable-config-tracking", true, "Treat the ConfigMaps and Secrets a target uses as part of its revision and copy them for the primary.")
	fs.StringVar(&o.IngressAnnotationsPrefix, "ingress-annotations-prefix", "nginx.ingress.kubernetes.io", "Prefix of the canary annotations written on NGINX Ingresses.")
	fs.StringVar(&o.IngressClass, "ingress-class", "", "Ingress class set on the Contour HTTPProxy objects Sluice creates.")
	fs.BoolVar(&o.EnableLeaderElection, "enable-leader-election", false, "Run leader election through a Lease so that only one replica acts.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "kube-system", "Namespace of the leader election Lease; -namespace wins when set.")
	fs.StringVar(&o.SlackURL, "slack-url", "", "Slack incoming-webhook address for alerts of every Canary (env SLACK_URL wins).")
	fs.StringVar(&o.SlackToken, "slack-token", "", "Slack bot token, used with chat.postMessage instead of a webhook (env SLACK_TOKEN wins).")
	fs.StringVar(&o.SlackProxyURL, "slack-proxy-url", "", "HTTP proxy for reaching Slack (env SLACK_PROXY_URL wins).")
	fs.StringVar(&o.SlackChannel, "slack-channel", "", "Slack channel that alerts go to.")
	fs.StringVar(&o.SlackUser, "slack-user", "flagger", "Name that Slack alerts are posted as.")
	fs.StringVar(&o.MSTeamsURL, "msteams-url", "", "Microsoft Teams incoming-webhook address for alerts of every Canary (env MSTEAMS_URL wins).")
	fs.StringVar(&o.MSTeamsProxyURL, "msteams-proxy-url", "", "HTTP proxy for reaching Microsoft Teams (env MSTEAMS_PROXY_URL wins).")
	fs.StringVar(&o.EventWebhook, "event-webhook", "", "Address that receives every Canary event as JSON (env EVENT_WEBHOOK_URL wins).")
	fs.StringVar(&o.ClusterName, "cluster-name", "", "Name of this cluster, shown in alerts.")
	fs.BoolVar(&o.AllowRunningFlagger, "allow-running-flagger", false, "Act on Canaries even while a Flagger controller runs in the cluster (its Lease is held or its Deployment is ready); by default Sluice waits until it stops.")
	fs.BoolVar(&o.NoCrossNamespaceRefs, "no-cross-namespace-refs", false, "Refuse references from a Canary to MetricTemplates and AlertProviders in other namespaces.")
	fs.StringVar(&o.WebhookTokenSecret, "webhook-token-secret", "", "Secret (namespace/name) whose key token is sent as Authorization: Bearer <token> to the webhooks of -webhook-token-hosts, such as the load tester's -auth-token-file; read when a call needs it and kept 30s.")
	fs.StringVar(&o.WebhookTokenHosts, "webhook-token-hosts", hostlist.Default, "Comma-separated webhook hosts that receive the -webhook-token-secret token: in-cluster (Service names), host names, *.domain, IP networks.")
	fs.IntVar(&o.MaxConcurrentCanaries, "max-concurrent-canaries", 0, "Most Canaries analysed at once; the others wait in phase Waiting, first come first served. 0 means no limit.")
	fs.IntVar(&o.Threadiness, "threadiness", DefaultThreadiness, "Number of Canaries reconciled at the same time.")
	fs.StringVar(&o.Port, "port", "8080", "Port serving /metrics, /healthz and /readyz.")
	fs.StringVar(&o.LogLevel, "log-level", "debug", "Log level: "+strings.Join(logLevels, ", ")+".")
	fs.StringVar(&o.ZapEncoding, "zap-encoding", "json", "Log encoding: json or console.")
	fs.BoolVar(&o.Version, "version", false, "Print the version and exit.")
	fs.DurationVar(&o.ControlLoopInterval, "control-loop-interval", 10*time.Second, "Accepted so that Flagger's command lines work; Sluice schedules each Canary from its own analysis interval.")
	fs.BoolVar(&o.ZapReplaceGlobals, "zap-replace-globals", false, "Also install the logger as zap's global logger, for libraries that log through it.")
	return fs
}

// ParseOptions parses args (without the program name), applies the
// environment overrides Flagger honours (getenv is os.Getenv outside tests)
// and validates the result. It returns flag.ErrHelp for -h and -help. With
// -version it skips validation, so the version prints whatever else is given.
// Every other error is one line naming the offending flag or argument.
func ParseOptions(args []string, getenv func(string) string) (*Options, error) {
	o := &Options{}
	fs := newFlagSet(o)
	fs.SetOutput(io.Discard) // errors are returned as one line, usage is printed by the caller
	if err := fs.Parse(args); err != nil {
		return nil, err // flag.ErrHelp, or one line naming the flag
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q: sluice takes only flags", fs.Arg(0))
	}
	o.fs = fs
	for env, field := range map[string]*string{
		"SLACK_URL":         &o.SlackURL,
		"SLACK_TOKEN":       &o.SlackToken,
		"SLACK_PROXY_URL":   &o.SlackProxyURL,
		"MSTEAMS_URL":       &o.MSTeamsURL,
		"MSTEAMS_PROXY_URL": &o.MSTeamsProxyURL,
		"EVENT_WEBHOOK_URL": &o.EventWebhook,
	} {
		if v := getenv(env); v != "" {
			*field = v
		}
	}
	if o.Version {
		return o, nil
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if o.MeshProvider == "gatewayapi" {
		o.MeshProvider = flaggerv1beta1.ProviderGatewayAPIV1
	}
	return o, nil
}

// smiWithMesh reports whether a provider is an SMI version followed by the
// mesh that implements it, such as smi:v1alpha3:linkerd.
func smiWithMesh(provider string) bool {
	i := strings.LastIndex(provider, ":")
	return strings.HasPrefix(provider, "smi:") && i > len("smi:") && i < len(provider)-1 && slices.Contains(meshProviders, provider[:i])
}

// validate checks the values Sluice acts on, and the mesh provider, whose
// typos would otherwise go unnoticed until routing is implemented.
func (o *Options) validate() error {
	if !slices.Contains(logLevels, o.LogLevel) {
		return fmt.Errorf("invalid value %q for -log-level: must be one of %s", o.LogLevel, strings.Join(logLevels, ", "))
	}
	if o.ZapEncoding != "json" && o.ZapEncoding != "console" {
		return fmt.Errorf("invalid value %q for -zap-encoding: must be json or console", o.ZapEncoding)
	}
	if !slices.Contains(meshProviders, o.MeshProvider) && !smiWithMesh(o.MeshProvider) {
		return fmt.Errorf("invalid value %q for -mesh-provider: must be one of %s", o.MeshProvider, strings.Join(meshProviders, ", "))
	}
	for _, c := range []struct {
		name  string
		value int
	}{{"threadiness", o.Threadiness}, {"kubeconfig-qps", o.KubeconfigQPS}, {"kubeconfig-burst", o.KubeconfigBurst}} {
		if c.value < 1 {
			return fmt.Errorf("invalid value %d for -%s: must be at least 1", c.value, c.name)
		}
	}
	if o.MaxConcurrentCanaries < 0 {
		return fmt.Errorf("invalid value %d for -max-concurrent-canaries: must be 0 (no limit) or more", o.MaxConcurrentCanaries)
	}
	if p, err := strconv.Atoi(o.Port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("invalid value %q for -port: must be a port number from 1 to 65535", o.Port)
	}
	if o.Namespace != "" {
		if errs := validation.IsDNS1123Label(o.Namespace); len(errs) > 0 {
			return fmt.Errorf("invalid value %q for -namespace: not a namespace name: %s", o.Namespace, strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1123Label(o.LeaderElectionNamespace); len(errs) > 0 {
		return fmt.Errorf("invalid value %q for -leader-election-namespace: not a namespace name: %s", o.LeaderElectionNamespace, strings.Join(errs, "; "))
	}
	if o.WebhookTokenSecret != "" {
		if _, err := token.ParseSecretRef(o.WebhookTokenSecret); err != nil {
			return fmt.Errorf("invalid value for -webhook-token-secret: %w", err)
		}
	}
	if _, err := hostlist.Parse(o.WebhookTokenHosts); err != nil {
		return fmt.Errorf("invalid value for -webhook-token-hosts: %w", err)
	}
	return nil
}

// LeaseNamespace is where the leader election Lease lives: -namespace when
// set, as in Flagger, else -leader-election-namespace.
func (o *Options) LeaseNamespace() string {
	if o.Namespace != "" {
		return o.Namespace
	}
	return o.LeaderElectionNamespace
}

// NotWiredWarnings returns one line for each flag that Sluice does not act
// on yet and that was set (by flag or environment) to a value other than
// its default.
func (o *Options) NotWiredWarnings() []string {
	var lines []string
	for _, row := range FlagTable() {
		if row.Wired {
			continue
		}
		if f := o.fs.Lookup(row.Name); f.Value.String() != f.DefValue {
			lines = append(lines, fmt.Sprintf("flag -%s is set but has no effect yet: %s", row.Name, row.NotWiredReason))
		}
	}
	return lines
}

// NotWiredFlags returns the names of the flags that Sluice parses for
// compatibility with Flagger but does not act on yet, in alphabetical order.
func NotWiredFlags() []string {
	var names []string
	for _, row := range FlagTable() {
		if !row.Wired {
			names = append(names, row.Name)
		}
	}
	return names
}

// FlagTable returns every flag of the manager in alphabetical order, with
// its default, whether Sluice acts on it yet and a one-line description. The
// README's flag table is checked against it (see testdata/flags.md).
func FlagTable() []FlagRow {
	var rows []FlagRow
	newFlagSet(&Options{}).VisitAll(func(f *flag.Flag) {
		reason, unwired := notWired[f.Name]
		rows = append(rows, FlagRow{
			Name:           f.Name,
			Default:        f.DefValue,
			Wired:          !unwired,
			Description:    f.Usage,
			NotWiredReason: reason,
		})
	})
	return rows
}

// FlagTableMarkdown renders FlagTable as a Markdown table.
func FlagTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| Flag | Default | Effective | Description |\n|---|---|---|---|\n")
	for _, r := range FlagTable() {
		effective := "yes"
		if !r.Wired {
			effective = "not yet: " + r.NotWiredReason
		}
		def := "`" + r.Default + "`"
		if r.Default == "" {
			def = ""
		}
		fmt.Fprintf(&b, "| `-%s` | %s | %s | %s |\n", r.Name, def, effective, strings.ReplaceAll(r.Description, "|", `\|`))
	}
	return b.String()
}

// usage writes the flags and their defaults to w, for -h.
func usage(w io.Writer) {
	fs := newFlagSet(&Options{})
	fs.SetOutput(w)
	_, _ = fmt.Fprintln(w, "Usage: sluice [flags]\n\nSluice is a progressive delivery controller for the flagger.app/v1beta1 API.\n\nFlags:")
	fs.PrintDefaults()
}
