package metrics

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"

	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// QueryRange runs query as a range query (/api/v1/query_range) over r
// with the same client as RunQuery. The result must be one series (or
// none): no series is ErrNoValues, more than one is an error that names
// them. Points whose value is NaN (a ratio of zero rates) are left out.
func (p *Prometheus) QueryRange(ctx context.Context, query string, r Range) ([]Point, error) {
	val, _, _, err := p.api.QueryRange(ctx, query, promv1.Range{Start: r.Start, End: r.End, Step: r.Step})
	if err != nil {
		return nil, fmt.Errorf("querying Prometheus at %s: %w", p.address, err)
	}
	m, ok := val.(model.Matrix)
	if !ok {
		return nil, fmt.Errorf("the range query returned a %s; it must return one series", val.Type())
	}
	switch len(m) {
	case 0:
		return nil, ErrNoValues
	case 1:
	default:
		return nil, fmt.Errorf("the query returned %d series, it must return exactly one (aggregate them, for example with sum()): %s", len(m), matrixSeries(m))
	}
	points := make([]Point, 0, len(m[0].Values))
	for _, sp := range m[0].Values {
		v := float64(sp.Value)
		if math.IsNaN(v) {
			continue
		}
		points = append(points, Point{Time: sp.Timestamp.Time(), Value: v})
	}
	if len(points) == 0 {
		return nil, ErrNaN
	}
	return points, nil
}

// matrixSeries names up to three series of m, for an error message.
func matrixSeries(m model.Matrix) string {
	names := make([]string, 0, len(m))
	for _, s := range m {
		names = append(names, s.Metric.String())
	}
	sort.Strings(names)
	if len(names) > 3 {
		names = append(names[:3], fmt.Sprintf("and %d more", len(names)-3))
	}
	return strings.Join(names, ", ")
}
