package meshsim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The providers the simulator plays.
const (
	// ProviderIstio routes by the VirtualService <apex> and exports
	// Istio's request metrics.
	ProviderIstio = "istio"
	// ProviderGatewayAPI routes by the HTTPRoute <apex> (gateway.networking.k8s.io/v1)
	// and exports the application's own request metrics
	// (http_request_duration_seconds), which Sluice's builtin queries for
	// gatewayapi read.
	ProviderGatewayAPI = "gatewayapi"
)

// Options say which Canary the simulator plays the mesh for.
type Options struct {
	// Config reaches the API server. Required.
	Config *rest.Config
	// Namespace is the Canary's namespace. Required.
	Namespace string
	// Provider is ProviderIstio or ProviderGatewayAPI. Default:
	// ProviderIstio.
	Provider string
	// Apex is the apex Service's name, also the name of the VirtualService
	// or HTTPRoute.
	// Default: Workload.
	Apex string
	// Workload is the target workload's name: its pods carry the label
	// app=<Workload>, the primary's app=<Workload>-primary and the
	// baseline's (analysis.baseline) app=<Workload>-baseline. Required.
	Workload string
	// SyncTimeout bounds the wait for the first list of the watched
	// objects. Default 30 seconds.
	SyncTimeout time.Duration
}

// Sim is a running simulated mesh. Stop it when done.
type Sim struct {
	// ProxyURL is the front proxy: requests sent there are routed as the
	// VirtualService (or HTTPRoute) says, to the version's backend.
	ProxyURL string
	// MetricsURL serves the provider's request metrics in the Prometheus format.
	MetricsURL string

	opts     Options
	cache    cache.Cache
	metrics  recorder
	state    atomic.Pointer[state]
	refresh  sync.Mutex // serializes rebuilding state
	servers  []*http.Server
	backends [numVersions]string // backend base URLs by version
	proxy    *frontProxy
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// state is what the sim routes by, rebuilt on every watch event.
type state struct {
	// table is nil while the VirtualService (or HTTPRoute) does not exist.
	table *table
	// ready are the Running and Ready pods of each version.
	ready [numVersions][]pod
}

// Start watches the VirtualService (or HTTPRoute) and the pods, starts the backends, the
// front proxy and the metrics server on 127.0.0.1, and returns once the
// watches have listed what exists. Cancelling ctx stops the watches; call
// Stop to stop everything.
func Start(ctx context.Context, opts Options) (*Sim, error) {
	switch {
	case opts.Config == nil:
		return nil, errors.New("meshsim: Options.Config is required")
	case opts.Namespace == "" || opts.Workload == "":
		return nil, errors.New("meshsim: Options.Namespace and Options.Workload are required")
	}
	if opts.Apex == "" {
		opts.Apex = opts.Workload
	}
	if opts.SyncTimeout <= 0 {
		opts.SyncTimeout = 30 * time.Second
	}
	var (
		m   recorder
		err error
	)
	switch opts.Provider {
	case "", ProviderIstio:
		opts.Provider = ProviderIstio
		m, err = newIstioMetrics()
	case ProviderGatewayAPI:
		m, err = newHTTPMetrics()
	default:
		return nil, fmt.Errorf("meshsim: unknown Options.Provider %q (want %q or %q)", opts.Provider, ProviderIstio, ProviderGatewayAPI)
	}
	if err != nil {
		return nil, err
	}
	s := &Sim{opts: opts, metrics: m}
	s.state.Store(&state{})
	if err := s.startWatches(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	if err := s.startServers(); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Routes returns the split of the default route that the sim applies now.
func (s *Sim) Routes() Routes {
	if t := s.current().table; t != nil {
		return t.summary
	}
	return Routes{}
}

// Ready returns how many Running and Ready pods the sim sees for the
// primary and the canary.
func (s *Sim) Ready() (primaryPods, canaryPods int) {
	st := s.current()
	return len(st.ready[primary]), len(st.ready[canary])
}

// ReadyBaseline returns how many Running and Ready pods the sim sees for
// the baseline (<Workload>-baseline).
func (s *Sim) ReadyBaseline() int {
	return len(s.current().ready[baseline])
}

// Stop stops the servers and the watches. It is safe to call twice.
func (s *Sim) Stop() {
	s.stopOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// The front proxy and the metrics server first, the backends last:
		// requests in flight finish through them.
		for i := len(s.servers) - 1; i >= 0; i-- {
			srv := s.servers[i]
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}
		if s.proxy != nil {
			s.proxy.wait()
		}
		if s.cancel != nil {
			s.cancel()
		}
		s.wg.Wait()
	})
}

// current is the state the sim routes by now.
func (s *Sim) current() *state { return s.state.Load() }

// service is the Service of a version.
func (s *Sim) service(v version) string {
	switch v {
	case canary:
		return s.opts.Apex + "-canary"
	case baseline:
		return s.opts.Apex + "-baseline"
	}
	return s.opts.Apex + "-primary"
}

// workload is the workload name of a version, also the app label of its
// pods.
func (s *Sim) workload(v version) string {
	switch v {
	case canary:
		return s.opts.Workload
	case baseline:
		return s.opts.Workload + "-baseline"
	}
	return s.opts.Workload + "-primary"
}

// versionOf returns the version whose pods carry the app label value.
func (s *Sim) versionOf(app string) (version, bool) {
	for _, v := range versions {
		if s.workload(v) == app {
			return v, true
		}
	}
	return 0, false
}

// startWatches starts a cache of the VirtualService (or HTTPRoute) and of the
// versions' pods, rebuilding the state on every change.
func (s *Sim) startWatches(ctx context.Context) error {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	if err := networkingv1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	if err := gatewayv1.Install(scheme); err != nil {
		return fmt.Errorf("building scheme: %w", err)
	}
	routing, _ := s.routing()
	apps, err := labels.NewRequirement("app", selection.In, []string{s.workload(canary), s.workload(primary), s.workload(baseline)})
	if err != nil {
		return fmt.Errorf("selecting the pods of %s: %w", s.opts.Workload, err)
	}
	c, err := cache.New(s.opts.Config, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{s.opts.Namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Pod{}: {Label: labels.NewSelector().Add(*apps)},
			routing:       {Field: fields.OneTermEqualSelector("metadata.name", s.opts.Apex)},
		},
	})
	if err != nil {
		return fmt.Errorf("creating the cache of %s/%s: %w", s.opts.Namespace, s.opts.Apex, err)
	}
	s.cache = c
	watchCtx, cancel := context.WithCancel(ctx)
	s.cancel = cancel
	logger := log.FromContext(ctx).WithValues("namespace", s.opts.Namespace, "apex", s.opts.Apex)
	rebuild := func() {
		if err := s.rebuild(watchCtx); err != nil && watchCtx.Err() == nil {
			logger.Error(err, "rebuilding the simulated mesh")
		}
	}
	handler := toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { rebuild() },
		UpdateFunc: func(any, any) { rebuild() },
		DeleteFunc: func(any) { rebuild() },
	}
	for _, obj := range []client.Object{&corev1.Pod{}, routing} {
		inf, err := c.GetInformer(watchCtx, obj)
		if err != nil {
			return fmt.Errorf("watching %T in %s: %w", obj, s.opts.Namespace, err)
		}
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("handling %T events in %s: %w", obj, s.opts.Namespace, err)
		}
	}
	s.wg.Go(func() {
		if err := c.Start(watchCtx); err != nil {
			logger.Error(err, "watching the simulated mesh's objects")
		}
	})
	syncCtx, cancelSync := context.WithTimeout(watchCtx, s.opts.SyncTimeout)
	defer cancelSync()
	if !c.WaitForCacheSync(syncCtx) {
		return fmt.Errorf("listing the %T %s/%s and its pods: not synced within %s", routing, s.opts.Namespace, s.opts.Apex, s.opts.SyncTimeout)
	}
	return s.rebuild(watchCtx)
}

// rebuild reads the VirtualService (or HTTPRoute) and the pods from the cache into a new
// state.
func (s *Sim) rebuild(ctx context.Context) error {
	s.refresh.Lock()
	defer s.refresh.Unlock()
	next := &state{}
	obj, compiled := s.routing()
	err := s.cache.Get(ctx, client.ObjectKey{Namespace: s.opts.Namespace, Name: s.opts.Apex}, obj)
	switch {
	case err == nil:
		next.table = compiled()
	case client.IgnoreNotFound(err) != nil:
		return fmt.Errorf("reading the %T %s/%s: %w", obj, s.opts.Namespace, s.opts.Apex, err)
	}
	pods := &corev1.PodList{}
	if err := s.cache.List(ctx, pods, client.InNamespace(s.opts.Namespace)); err != nil {
		return fmt.Errorf("listing the pods of %s/%s: %w", s.opts.Namespace, s.opts.Workload, err)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		v, ok := s.versionOf(p.Labels["app"])
		if !ok || !ready(p) {
			continue
		}
		next.ready[v] = append(next.ready[v], podOf(p))
	}
	s.state.Store(next)
	return nil
}

// routing returns an empty routing object of the provider (the
// VirtualService or the HTTPRoute) and a function that compiles it once
// read.
func (s *Sim) routing() (client.Object, func() *table) {
	if s.opts.Provider == ProviderGatewayAPI {
		r := &gatewayv1.HTTPRoute{}
		return r, func() *table { return compileHTTPRoute(&r.Spec, s.opts.Apex) }
	}
	vs := &networkingv1.VirtualService{}
	return vs, func() *table { return compile(&vs.Spec, s.opts.Apex) }
}

// startServers starts the backends of the versions, the front proxy and
// the metrics server, each on a free port of 127.0.0.1.
func (s *Sim) startServers() error {
	for _, v := range versions {
		url, err := s.serve(&backend{sim: s, version: v, workload: s.workload(v)})
		if err != nil {
			return fmt.Errorf("starting the %s backend: %w", v, err)
		}
		s.backends[v] = url
	}
	s.proxy = newFrontProxy(s)
	url, err := s.serve(s.proxy)
	if err != nil {
		return fmt.Errorf("starting the front proxy: %w", err)
	}
	s.ProxyURL = url
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.gatherer(), promhttp.HandlerOpts{}))
	url, err = s.serve(mux)
	if err != nil {
		return fmt.Errorf("starting the metrics server: %w", err)
	}
	s.MetricsURL = url + "/metrics"
	return nil
}

// serve serves h on a free port of 127.0.0.1 and returns its base URL.
func (s *Sim) serve(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("listening on 127.0.0.1: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	s.wg.Go(func() { _ = srv.Serve(ln) })
	return "http://" + ln.Addr().String(), nil
}
