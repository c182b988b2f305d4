package metrics

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	knativev1 "github.com/sluicedev/sluice/pkg/apis/knative/v1"
)

// DefaultMaxProviders is how many provider clients a ClusterResolver keeps
// when its configuration does not say.
const DefaultMaxProviders = 64

// ResolverConfig holds the controller settings a ClusterResolver needs.
type ResolverConfig struct {
	// MetricsServer is the URL of the Prometheus-compatible server that
	// answers builtin metrics, inline queries and prometheus templates
	// without an address, for Canaries without spec.metricsServer
	// (-metrics-server).
	MetricsServer string
	// MeshProvider is the traffic provider of Canaries without
	// spec.provider (-mesh-provider). Empty means istio, as in Flagger.
	MeshProvider string
	// NoCrossNamespaceRefs refuses templateRefs to a namespace other than
	// the Canary's (-no-cross-namespace-refs).
	NoCrossNamespaceRefs bool
	// QueryTimeout bounds each request to a metrics backend. Zero means
	// DefaultQueryTimeout.
	QueryTimeout time.Duration
	// MaxProviders bounds how many provider clients are kept; the least
	// recently used one is dropped first. Zero means DefaultMaxProviders.
	MaxProviders int
	// Kube is the client of the keptn provider, which reads KeptnMetrics
	// and creates and deletes Analyses with it. It should read
	// unstructured objects from the API server rather than a cache (the
	// manager's client does). Nil makes keptn templates an error.
	Kube client.Client
	// Rest is Sluice's connection to the API server, which externalmetrics
	// templates without an address use. Nil makes them need an address.
	Rest *rest.Config
}

// ClusterResolver is the production Resolver. It resolves, in this order:
// a metric with templateRef to its MetricTemplate (read, with its Secret,
// through the reader); a metric with the deprecated inline query to that
// PromQL on the metrics server; a builtin metric name to the builtin query
// of the Canary's traffic provider on the metrics server. Anything else is
// an error. Provider clients are built once per configuration (address,
// credentials and options) and reused.
type ClusterResolver struct {
	reader client.Reader
	cfg    ResolverConfig
	cache  *providerCache
}

// NewResolver returns a ClusterResolver that reads MetricTemplates and
// Secrets through reader.
func NewResolver(reader client.Reader, cfg ResolverConfig) *ClusterResolver {
	if cfg.MeshProvider == "" {
		cfg.MeshProvider = flaggerv1beta1.ProviderIstio
	}
	if cfg.MaxProviders <= 0 {
		cfg.MaxProviders = DefaultMaxProviders
	}
	return &ClusterResolver{reader: reader, cfg: cfg, cache: &providerCache{max: cfg.MaxProviders, entries: map[string]*cacheEntry{}}}
}

// Resolve returns the provider and the rendered query of metric m of
// Canary cd.
func (r *ClusterResolver) Resolve(ctx context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (Provider, string, error) {
	server := cd.Spec.MetricsServer
	if server == "" {
		server = r.cfg.MetricsServer
	}
	qm, err := r.queryModel(ctx, cd, m)
	if err != nil {
		return nil, "", err
	}
	if m.TemplateRef != nil {
		rt, err := resolveTemplate(ctx, r.reader, cd, m, qm, server, r.cfg.NoCrossNamespaceRefs)
		if err != nil {
			return nil, "", err
		}
		p, err := r.provider(rt.config)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", rt.source, err)
		}
		return p, rt.query, nil
	}

	var source, text string
	if m.Query != "" {
		source, text = fmt.Sprintf("metric %q (inline query)", m.Name), m.Query
	} else {
		mesh := cd.Spec.Provider
		if mesh == "" {
			mesh = r.cfg.MeshProvider
		}
		q, err := builtinQuery(mesh, m.Name)
		if err != nil {
			return nil, "", err
		}
		source, text = fmt.Sprintf("builtin metric %q of provider %s", m.Name, mesh), q
	}
	if _, err := qm.window(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", source, err)
	}
	query, err := qm.Render(source, text)
	if err != nil {
		return nil, "", err
	}
	p, err := r.provider(ProviderConfig{Type: flaggerv1beta1.MetricProviderPrometheus, Address: server})
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", source, err)
	}
	return p, query, nil
}

// queryModel returns what the query of metric m of Canary cd can read.
// For a Knative Service target, {{ route }} is the Service's latest created
// revision (the canary), as in Flagger, read through the reader.
func (r *ClusterResolver) queryModel(ctx context.Context, cd *flaggerv1beta1.Canary, m flaggerv1beta1.CanaryMetric) (QueryModel, error) {
	qm := NewQueryModel(cd, m)
	if !cd.Spec.TargetRef.IsKnativeService() {
		return qm, nil
	}
	svc := &knativev1.Service{}
	key := client.ObjectKey{Namespace: cd.Namespace, Name: cd.Spec.TargetRef.Name}
	if err := r.reader.Get(ctx, key, svc); err != nil {
		return qm, fmt.Errorf("metric %q: reading the Knative Service %s for {{ route }}: %w", m.Name, key, err)
	}
	if rev := svc.Status.LatestCreatedRevisionName; rev != "" {
		qm.Route = rev
	}
	return qm, nil
}

// provider returns the cached provider for cfg or builds it.
func (r *ClusterResolver) provider(cfg ProviderConfig) (Provider, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = r.cfg.QueryTimeout
	}
	switch cfg.Type {
	case flaggerv1beta1.MetricProviderPrometheus, flaggerv1beta1.MetricProviderStackdriver:
		cfg.Window = 0 // PromQL and MQL carry their window: one client (and token) for every interval
	case flaggerv1beta1.MetricProviderKeptn:
		cfg.Window = 0 // the query carries its timeframe
		cfg.Kube = r.cfg.Kube
	case flaggerv1beta1.MetricProviderExternalMetrics:
		cfg.Window = 0 // the adapter decides the window
		cfg.Rest = r.cfg.Rest
	}
	return r.cache.get(cfg)
}

// providerCache keeps the providers built for each configuration, keyed by
// a hash of the configuration (which holds credentials), and drops the
// least recently used one beyond max.
type providerCache struct {
	mu      sync.Mutex
	max     int
	tick    uint64
	entries map[string]*cacheEntry
}

// cacheEntry is one cached provider and when it was last used.
type cacheEntry struct {
	provider Provider
	used     uint64
}

// get returns the provider of cfg, building it on the first use.
func (c *providerCache) get(cfg ProviderConfig) (Provider, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("hashing the provider configuration: %w", err)
	}
	sum := sha256.Sum256(raw)
	key := hex.EncodeToString(sum[:])

	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	if e, ok := c.entries[key]; ok {
		e.used = c.tick
		return e.provider, nil
	}
	p, err := newProvider(cfg)
	if err != nil {
		return nil, err
	}
	if len(c.entries) >= c.max {
		var oldest string
		for k, e := range c.entries {
			if oldest == "" || e.used < c.entries[oldest].used {
				oldest = k
			}
		}
		delete(c.entries, oldest)
	}
	c.entries[key] = &cacheEntry{provider: p, used: c.tick}
	return p, nil
}

// len returns how many providers are cached, for tests.
func (c *providerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
