package canary

import (
	"maps"
	"testing"

	kedav1alpha1 "github.com/sluicedev/sluice/pkg/apis/keda/v1alpha1"
)

func TestPrimaryTriggers_PointTheQueriesAtThePrimary(t *testing.T) {
	t.Parallel()
	trigger := func(name, query string) kedav1alpha1.ScaleTriggers {
		md := map[string]string{"serverAddress": "http://prometheus:9090", "threshold": "100"}
		if query != "" {
			md["query"] = query
		}
		return kedav1alpha1.ScaleTriggers{Type: "prometheus", Name: name, Metadata: md}
	}
	tests := []struct {
		name    string
		queries map[string]string
		in      []kedav1alpha1.ScaleTriggers
		want    []string // the query of each trigger afterwards, "" for none
	}{
		{
			name: "the target and its canary Service become the primary",
			in: []kedav1alpha1.ScaleTriggers{
				trigger("", `sum(rate(http_requests_total{deployment="podinfo"}[1m]))`),
				trigger("", `sum(rate(x{service="podinfo-canary"}[1m])) + sum(y{app="podinfo"})`),
			},
			want: []string{
				`sum(rate(http_requests_total{deployment="podinfo-primary"}[1m]))`,
				`sum(rate(x{service="podinfo-primary"}[1m])) + sum(y{app="podinfo-primary"})`,
			},
		},
		{
			name: "a query naming something else is kept, and so is a trigger without a query",
			in:   []kedav1alpha1.ScaleTriggers{trigger("", `sum(queue_depth{queue="orders"})`), trigger("", "")},
			want: []string{`sum(queue_depth{queue="orders"})`, ""},
		},
		{
			name:    "primaryScalerQueries replace the named triggers' queries only",
			queries: map[string]string{"rps": `sum(rate(http_requests_total{deployment="podinfo-primary"}[2m]))`, "missing": "unused"},
			in: []kedav1alpha1.ScaleTriggers{
				trigger("rps", `sum(rate(http_requests_total{deployment="podinfo"}[1m]))`),
				trigger("latency", `histogram_quantile(0.9, podinfo)`),
				trigger("", `sum(podinfo)`),
			},
			want: []string{
				`sum(rate(http_requests_total{deployment="podinfo-primary"}[2m]))`,
				`histogram_quantile(0.9, podinfo)`,
				`sum(podinfo)`,
			},
		},
		{
			name:    "a named trigger without metadata gets some",
			queries: map[string]string{"rps": "q"},
			in:      []kedav1alpha1.ScaleTriggers{{Type: "prometheus", Name: "rps"}},
			want:    []string{"q"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := make([]map[string]string, len(tt.in))
			for i, tr := range tt.in {
				before[i] = maps.Clone(tr.Metadata)
			}
			primaryTriggers(tt.in, "podinfo", tt.queries)
			for i, tr := range tt.in {
				if got := tr.Metadata["query"]; got != tt.want[i] {
					t.Errorf("trigger %d: query = %q, want %q", i, got, tt.want[i])
				}
				for k, v := range before[i] {
					if k != "query" && tr.Metadata[k] != v {
						t.Errorf("trigger %d: metadata %s = %q, want it kept as %q", i, k, tr.Metadata[k], v)
					}
				}
			}
		})
	}
}
