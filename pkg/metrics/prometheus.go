package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	promapi "github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// Prometheus runs PromQL instant queries through the Prometheus HTTP API
// (/api/v1/query). It serves provider type prometheus and the builtin
// metrics. Thanos, Cortex, Mimir and VictoriaMetrics answer the same API.
//
// Secret keys: token (sent as a bearer token) or username and password
// (basic auth).
type Prometheus struct {
	address string
	api     promv1.API
	now     func() time.Time
}

// NewPrometheus returns a Prometheus provider for cfg. The address is
// required.
func NewPrometheus(cfg ProviderConfig) (*Prometheus, error) {
	if cfg.Address == "" {
		return nil, errors.New("prometheus: no address: set the MetricTemplate's provider.address, the Canary's metricsServer or -metrics-server")
	}
	auth, err := bearerOrBasic(cfg)
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	c, err := promapi.NewClient(promapi.Config{Address: cfg.Address, Client: newHTTPClient(cfg, auth)})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", cfg.Address, err)
	}
	return &Prometheus{address: cfg.Address, api: promv1.NewAPI(c), now: time.Now}, nil
}

// RunQuery runs query as an instant query at the current time. The result
// must be a scalar or a vector of exactly one series: an empty vector is
// ErrNoValues, NaN is ErrNaN, and more series are an error that says how
// many came back, never a silent pick.
func (p *Prometheus) RunQuery(ctx context.Context, query string) (float64, error) {
	val, _, _, err := p.api.Query(ctx, query, p.now())
	if err != nil {
		return 0, fmt.Errorf("querying Prometheus at %s: %w", p.address, err)
	}
	var v float64
	switch r := val.(type) {
	case model.Vector:
		switch len(r) {
		case 0:
			return 0, ErrNoValues
		case 1:
			v = float64(r[0].Value)
		default:
			return 0, fmt.Errorf("the query returned %d series, it must return exactly one (aggregate them, for example with sum()): %s", len(r), seriesList(r))
		}
	case *model.Scalar:
		v = float64(r.Value)
	case model.Matrix:
		return 0, fmt.Errorf("the query returned a range vector of %d series; it must return a single instant value", len(r))
	default:
		return 0, fmt.Errorf("the query returned a %s; it must return a number", val.Type())
	}
	if math.IsNaN(v) {
		return 0, ErrNaN
	}
	return v, nil
}

// IsOnline runs vector(1) and checks that the answer is 1.
func (p *Prometheus) IsOnline(ctx context.Context) (bool, error) {
	v, err := p.RunQuery(ctx, "vector(1)")
	if err != nil {
		return false, fmt.Errorf("checking Prometheus at %s: %w", p.address, err)
	}
	if v != 1 {
		return false, fmt.Errorf("checking Prometheus at %s: vector(1) returned %g", p.address, v)
	}
	return true, nil
}

// seriesList names up to three series of v, for an error message.
func seriesList(v model.Vector) string {
	names := make([]string, 0, len(v))
	for _, s := range v {
		names = append(names, s.Metric.String())
	}
	sort.Strings(names)
	if len(names) > 3 {
		names = append(names[:3], fmt.Sprintf("and %d more", len(names)-3))
	}
	return strings.Join(names, ", ")
}
