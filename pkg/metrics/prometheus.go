package metrics

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
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
	c, err := promapi.NewClient(promapi.Config{Address: cfg.Address, Client: newHTTPClient(cfg, cfg.Address, auth)})
	if err != nil {
		return nil, fmt.Errorf("prometheus client for %s: %w", cfg.Address, err)
	}
	return &Prometheus{address: cfg.Address, api: promv1.NewAPI(c), now: time.Now}, nil
}

// RunQuery runs query as an instant query at the current time; see
// RunQueryNoted.
func (p *Prometheus) RunQuery(ctx context.Context, query string) (float64, error) {
	v, _, err := p.RunQueryNoted(ctx, query)
	return v, err
}

// RunQueryNoted runs query as an instant query at the current time. The
// result must be a scalar or an instant vector: an empty vector is
// ErrNoValues and NaN is ErrNaN. Of a vector of several series the last
// one's value is taken, as Flagger does, and the note says how many came
// back and which one counted; a range vector (matrix) is an error.
func (p *Prometheus) RunQueryNoted(ctx context.Context, query string) (float64, string, error) {
	val, _, _, err := p.api.Query(ctx, query, p.now())
	if err != nil {
		return 0, "", fmt.Errorf("querying Prometheus at %s: %w", p.address, err)
	}
	var v float64
	var note string
	switch r := val.(type) {
	case model.Vector:
		if len(r) == 0 {
			return 0, "", ErrNoValues
		}
		if slices.Contains(r, nil) {
			return 0, "", fmt.Errorf("querying Prometheus at %s: the answer has a null sample", p.address)
		}
		last := r[len(r)-1]
		v = float64(last.Value)
		if len(r) > 1 {
			note = fmt.Sprintf("the query returned %d series and the last one, %s, was compared (as Flagger does); aggregate them, for example with sum(), to compare one value: %s",
				len(r), last.Metric, seriesList(r))
		}
	case *model.Scalar:
		if r == nil {
			return 0, "", fmt.Errorf("querying Prometheus at %s: the answer has a null scalar", p.address)
		}
		v = float64(r.Value)
	case model.Matrix:
		return 0, "", fmt.Errorf("the query returned a range vector of %d series; it must return a single instant value", len(r))
	case nil:
		return 0, "", fmt.Errorf("querying Prometheus at %s: the answer has no result", p.address)
	default:
		return 0, "", fmt.Errorf("the query returned a %s; it must return a number", val.Type())
	}
	if math.IsNaN(v) {
		return 0, note, ErrNaN
	}
	return v, note, nil
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
