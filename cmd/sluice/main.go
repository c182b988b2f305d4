// Command sluice is the Sluice manager: a progressive delivery controller
// for the flagger.app/v1beta1 API that takes Flagger's flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/cluster"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/internal/version"
	"github.com/sluicedev/sluice/pkg/cachescope"
	"github.com/sluicedev/sluice/pkg/canary"
	"github.com/sluicedev/sluice/pkg/controller"
	"github.com/sluicedev/sluice/pkg/hostlist"
	"github.com/sluicedev/sluice/pkg/metrics"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/recorder"
	"github.com/sluicedev/sluice/pkg/router"
	"github.com/sluicedev/sluice/pkg/webhook"
	"github.com/sluicedev/sluice/pkg/webhook/token"
)

// LeaderElectionID is the name of the leader election Lease.
const LeaderElectionID = "sluice-leader-election"

// gcPercent is Sluice's GOGC unless the environment sets one: its heap is
// mostly informer caches that change little, and Go's default of 100 lets
// the process hold twice that heap (the scale benchmark measured 130 MiB
// of RSS for 37 MB of live heap at N=1000). Collecting at 50% growth
// costs little CPU at Sluice's allocation rate.
const gcPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gcPercent)
	}
	opts, err := ParseOptions(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		usage(os.Stdout)
		return
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sluice: %v (see sluice -h)\n", err)
		os.Exit(2)
	}
	if opts.Version {
		fmt.Println(version.String())
		return
	}
	logger := newLogger(opts, os.Stderr)
	ctrl.SetLogger(logger)
	klog.SetLogger(logger) // client-go (leader election) logs through the same logger
	if err := run(ctrl.SetupSignalHandler(), opts, logger); err != nil {
		logger.Error(err, "Sluice failed")
		os.Exit(1)
	}
}

// debugHandlers are served beside /metrics; a build with -tags pprof
// adds Go's /debug/pprof (see pprof.go), for the scale benchmark's -pprof.
var debugHandlers map[string]http.Handler

// run builds the manager, registers the reconciler and runs until ctx ends.
func run(ctx context.Context, opts *Options, logger logr.Logger) error {
	logger.Info("Starting Sluice", "version", version.String(), "meshProvider", opts.MeshProvider, "namespace", opts.Namespace)
	logNotWired(logger, opts)

	cfg, err := restConfig(opts)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(scheme), flaggerv1beta1.AddToScheme(scheme), router.AddToScheme(scheme), canary.AddToScheme(scheme)); err != nil {
		return fmt.Errorf("building the scheme: %w", err)
	}
	// Managed fields are never read, and are a large part of every object.
	cacheOpts := cache.Options{DefaultTransform: cache.TransformStripManagedFields()}
	if opts.Namespace != "" {
		cacheOpts.DefaultNamespaces = map[string]cache.Config{opts.Namespace: {}}
	}
	// The workload cluster's cache keeps in full only the workloads
	// Canaries use (see pkg/cachescope); the mesh cluster's holds routing
	// objects only.
	scope := cachescope.New()
	leaseDuration, renewDeadline, retryPeriod := 60*time.Second, 15*time.Second, 5*time.Second
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         scope.Options(cacheOpts),
		NewClient:                     scope.NewClient,
		Metrics:                       metricsserver.Options{BindAddress: ":" + opts.Port, ExtraHandlers: debugHandlers},
		HealthProbeBindAddress:        "0", // /healthz and /readyz are served on -port, see addProbes
		LeaderElection:                opts.EnableLeaderElection,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       opts.LeaseNamespace(),
		LeaderElectionResourceLock:    resourcelock.LeasesResourceLock,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &leaseDuration,
		RenewDeadline:                 &renewDeadline,
		RetryPeriod:                   &retryPeriod,
	})
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	if err := addProbes(ctx, mgr); err != nil {
		return err
	}
	r, err := newReconciler(mgr, opts, logger)
	if err != nil {
		return err
	}
	kept, msg, err := controller.StatusFieldsKept(ctx, mgr.GetAPIReader())
	if err != nil {
		logger.Error(err, "Checking the Canary CRD failed; assuming it is Sluice's")
	}
	if !kept {
		logger.Info("Warning: " + msg)
		r.KeepStatusInMemory = true
	}
	if !opts.AllowRunningFlagger {
		r.Flagger = &controller.FlaggerDetector{Reader: mgr.GetAPIReader(),
			LeaseNamespaces: uniq("kube-system", "flagger-system", "flagger", opts.LeaseNamespace())}
		if err := mgr.Add(r.Flagger); err != nil {
			return fmt.Errorf("adding the Flagger detector: %w", err)
		}
	}
	mesh, err := newMeshCluster(cfg, opts, scheme, cacheOpts)
	if err != nil {
		return err
	}
	if mesh != nil {
		if err := mgr.Add(mesh); err != nil {
			return fmt.Errorf("adding the mesh cluster: %w", err)
		}
		r.MeshClient, r.MeshAPIReader = mesh.GetClient(), mesh.GetAPIReader()
		logger.Info("Writing routing objects to the mesh cluster", "host", mesh.GetConfig().Host)
	}
	if err := r.SetupWithManager(mgr, opts.Threadiness); err != nil {
		return err
	}
	if err := mgr.Start(ctx); err != nil {
		return fmt.Errorf("running the manager: %w", err)
	}
	logger.Info("Sluice stopped")
	return nil
}

// restConfig loads the API server's address and credentials as
// controller-runtime does (KUBECONFIG, in-cluster, ~/.kube/config), unless
// -kubeconfig or -master say otherwise, and applies -kubeconfig-qps and
// -kubeconfig-burst.
func restConfig(opts *Options) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if opts.Kubeconfig == "" && opts.Master == "" {
		cfg, err = ctrl.GetConfig()
	} else {
		rules := clientcmd.NewDefaultClientConfigLoadingRules()
		rules.ExplicitPath = opts.Kubeconfig
		overrides := &clientcmd.ConfigOverrides{ClusterInfo: clientcmdapi.Cluster{Server: opts.Master}}
		cfg, err = clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("loading the Kubernetes client configuration: %w", err)
	}
	cfg.QPS = float32(opts.KubeconfigQPS)
	cfg.Burst = opts.KubeconfigBurst
	cfg.UserAgent = "sluice/" + version.Version
	return cfg, nil
}

// newMeshCluster returns the cluster of -kubeconfig-service-mesh, with its
// own cache set up like the manager's, or nil when the flag is unset or
// names the cluster of cfg (then the routing objects stay in it, with
// owner references, as Flagger does). The client limits of -kubeconfig-qps
// and -kubeconfig-burst apply to it too.
func newMeshCluster(cfg *rest.Config, opts *Options, scheme *runtime.Scheme, cacheOpts cache.Options) (cluster.Cluster, error) {
	if opts.KubeconfigServiceMesh == "" {
		return nil, nil
	}
	meshCfg, err := clientcmd.BuildConfigFromFlags("", opts.KubeconfigServiceMesh)
	if err != nil {
		return nil, fmt.Errorf("loading -kubeconfig-service-mesh %s: %w", opts.KubeconfigServiceMesh, err)
	}
	if sameHost(meshCfg.Host, cfg.Host) {
		return nil, nil
	}
	meshCfg.QPS, meshCfg.Burst, meshCfg.UserAgent = cfg.QPS, cfg.Burst, cfg.UserAgent
	c, err := cluster.New(meshCfg, func(o *cluster.Options) {
		o.Scheme = scheme
		o.Cache = cacheOpts
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to the mesh cluster of -kubeconfig-service-mesh: %w", err)
	}
	return c, nil
}

// sameHost reports whether two API server addresses, with or without a
// scheme, name the same server.
func sameHost(a, b string) bool {
	norm := func(h string) string {
		if !strings.Contains(h, "://") {
			h = "https://" + h
		}
		return strings.TrimSuffix(h, "/")
	}
	return norm(a) == norm(b)
}

// newReconciler wires the Canary reconciler with the settings from the
// flags, and adds the alert dispatcher to the manager so that it drains on
// shutdown.
func newReconciler(mgr ctrl.Manager, opts *Options, logger logr.Logger) (*controller.CanaryReconciler, error) {
	reader := cacheFirstReader{cache: mgr.GetCache(), live: mgr.GetAPIReader()}
	dispatcher, err := notifier.NewDispatcher(notifier.Options{
		Reader: reader,
		Global: notifier.GlobalConfig{
			SlackURL: opts.SlackURL, SlackToken: opts.SlackToken, SlackChannel: opts.SlackChannel,
			SlackUser: opts.SlackUser, SlackProxyURL: opts.SlackProxyURL,
			MSTeamsURL: opts.MSTeamsURL, MSTeamsProxyURL: opts.MSTeamsProxyURL,
		},
		ClusterName:          opts.ClusterName,
		NoCrossNamespaceRefs: opts.NoCrossNamespaceRefs,
		Logger:               logger.WithName("notifier"),
		Registerer:           ctrlmetrics.Registry,
	})
	if err != nil {
		return nil, fmt.Errorf("configuring alerts: %w", err)
	}
	if err := mgr.Add(dispatcher); err != nil {
		return nil, fmt.Errorf("adding the alert dispatcher: %w", err)
	}
	webhooks, err := newWebhookCaller(mgr.GetAPIReader(), opts)
	if err != nil {
		return nil, err
	}
	rec, err := recorder.New(ctrlmetrics.Registry, version.Version, opts.MeshProvider)
	if err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	return &controller.CanaryReconciler{
		Client:    mgr.GetClient(),
		Scheme:    mgr.GetScheme(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorderFor("sluice"), //nolint:staticcheck // see CanaryReconciler.Recorder
		Workloads: canary.Config{
			SelectorLabels:     splitList(opts.SelectorLabels),
			IncludeLabelPrefix: splitList(opts.IncludeLabelPrefix),
			ConfigTracking:     opts.EnableConfigTracking,
		},
		MeshProvider:             opts.MeshProvider,
		IngressAnnotationsPrefix: opts.IngressAnnotationsPrefix,
		IngressClass:             opts.IngressClass,
		Analyzer: &metrics.Analyzer{
			Resolver: metrics.NewResolver(reader, metrics.ResolverConfig{
				MetricsServer: opts.MetricsServer, MeshProvider: opts.MeshProvider, NoCrossNamespaceRefs: opts.NoCrossNamespaceRefs,
				// The manager's client reads unstructured objects (Keptn's)
				// from the API server, not from its cache.
				Kube: mgr.GetClient(),
				// externalmetrics templates without an address read the
				// external metrics API of this cluster.
				Rest: mgr.GetConfig(),
			}),
			Observe: rec.ObserveMetricQuery,
		},
		Webhooks:              webhooks,
		Notifier:              dispatcher,
		EventWebhook:          opts.EventWebhook,
		Metrics:               rec,
		MaxConcurrentCanaries: opts.MaxConcurrentCanaries,
		NoCrossNamespaceRefs:  opts.NoCrossNamespaceRefs,
		MinInterval:           10 * time.Second,
	}, nil
}

// newWebhookCaller is the webhook client: with -webhook-token-secret it
// sends that Secret's token, read through r (the API server, no Secret
// cache), to the hosts of -webhook-token-hosts.
func newWebhookCaller(r client.Reader, opts *Options) (*webhook.HTTPCaller, error) {
	if opts.WebhookTokenSecret == "" {
		return &webhook.HTTPCaller{}, nil
	}
	secret, err := token.NewSecret(r, opts.WebhookTokenSecret)
	if err != nil {
		return nil, fmt.Errorf("-webhook-token-secret: %w", err)
	}
	hosts, err := hostlist.Parse(opts.WebhookTokenHosts)
	if err != nil {
		return nil, fmt.Errorf("-webhook-token-hosts: %w", err)
	}
	// Outside a pod there is no cluster search line: Service names then
	// resolve as name.namespace.svc.cluster.local.
	if dns, err := hostlist.ReadClusterDNS("/etc/resolv.conf"); err == nil {
		hosts.Cluster = dns
	}
	return &webhook.HTTPCaller{Token: secret, TokenHosts: hosts}, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// uniq returns the strings in order, without repeats.
func uniq(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
