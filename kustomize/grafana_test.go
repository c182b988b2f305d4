package kustomize_test

// The Grafana dashboards in grafana/ are checked with Prometheus's own PromQL
// parser (github.com/prometheus/prometheus/promql/parser): every query of
// every panel and template variable must parse, and every metric it reads
// must be one that pkg/recorder or pkg/notifier registers, or, on a mesh's
// canary analysis board, one of the metrics that mesh exports (the names
// Sluice's builtin checks read, from pkg/metrics/promtest), so a typo in a
// metric name fails the test.

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/promql/parser"
	corev1 "k8s.io/api/core/v1"

	"github.com/sluicedev/sluice/pkg/metrics/promtest"
	"github.com/sluicedev/sluice/pkg/notifier"
	"github.com/sluicedev/sluice/pkg/recorder"
)

const (
	grafanaDir       = "grafana"
	dashboardCM      = "sluice-grafana-dashboard"
	datasourceUID    = "${DS_PROMETHEUS}"
	grafanaGridWidth = 24
)

// dashboard is the part of Grafana's dashboard model the tests read.
type dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []panel `json:"panels"`
	Templating    struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Query      json.RawMessage `json:"query"`
			Definition string          `json:"definition"`
			Datasource *datasource     `json:"datasource"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int         `json:"id"`
	Type       string      `json:"type"`
	Title      string      `json:"title"`
	Datasource *datasource `json:"datasource"`
	GridPos    struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets     []query `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Mappings []struct {
				Type    string `json:"type"`
				Options map[string]struct {
					Text string `json:"text"`
				} `json:"options"`
			} `json:"mappings"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []panel `json:"panels"`
}

type query struct {
	RefID      string      `json:"refId"`
	Expr       string      `json:"expr"`
	Datasource *datasource `json:"datasource"`
}

type datasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// dashboardCase is one dashboard file: its uid, the mesh whose metrics it
// may read besides Sluice's (a name for promtest.MeshByName), and metrics
// its queries must read.
type dashboardCase struct {
	file, uid, mesh string
	mustRead        []string
}

// dashboards are the files in grafana/; TestDashboards_MatchFiles fails on
// a file without a row.
var dashboards = []dashboardCase{
	{file: "sluice-canaries.json", uid: "sluice-canaries", mustRead: []string{
		"flagger_canary_status", "flagger_canary_weight", "flagger_canary_metric_analysis",
		"flagger_canary_successes_total", "flagger_canary_failures_total",
		"flagger_canary_duration_seconds_bucket", "flagger_canary_total",
		"sluice_reconcile_duration_seconds_bucket", "sluice_notification_failures_total",
	}},
	{file: "sluice-istio.json", uid: "sluice-istio", mesh: "istio", mustRead: []string{
		"flagger_canary_status", "flagger_canary_weight", "istio_requests_total", "istio_request_duration_milliseconds_bucket"}},
	{file: "sluice-linkerd.json", uid: "sluice-linkerd", mesh: "linkerd", mustRead: []string{
		"flagger_canary_status", "flagger_canary_weight", "response_total", "response_latency_ms_bucket"}},
	{file: "sluice-nginx.json", uid: "sluice-nginx", mesh: "nginx", mustRead: []string{
		"flagger_canary_status", "flagger_canary_weight", "nginx_ingress_controller_requests", "nginx_ingress_controller_request_duration_seconds_bucket"}},
	// Gateway API implementations share no metric names; Sluice's builtin
	// checks read the application's own histogram there.
	{file: "sluice-gatewayapi.json", uid: "sluice-gatewayapi", mesh: "http", mustRead: []string{
		"flagger_canary_status", "flagger_canary_weight", "http_request_duration_seconds_count", "http_request_duration_seconds_bucket"}},
}

func TestDashboards_MatchFiles(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(grafanaDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, dc := range dashboards {
		want = append(want, filepath.Join(grafanaDir, dc.file))
	}
	slices.Sort(want)
	if !slices.Equal(files, want) {
		t.Errorf("dashboard files %v, want a row in dashboards for each: %v", files, want)
	}
}

// forEachDashboard runs f as a subtest per dashboard.
func forEachDashboard(t *testing.T, f func(t *testing.T, dc dashboardCase, raw []byte, d dashboard)) {
	for _, dc := range dashboards {
		t.Run(dc.file, func(t *testing.T) {
			raw, d := readDashboard(t, dc.file)
			f(t, dc, raw, d)
		})
	}
}

func readDashboard(t *testing.T, file string) ([]byte, dashboard) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(grafanaDir, file))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s does not parse: %v", file, err)
	}
	return raw, d
}

// allPanels flattens the panels of collapsed rows into the list.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

func TestDashboard_IsWellFormed(t *testing.T) {
	forEachDashboard(t, checkWellFormed)
}

func checkWellFormed(t *testing.T, dc dashboardCase, _ []byte, d dashboard) {
	if d.UID != dc.uid {
		t.Errorf("uid = %q, want %q", d.UID, dc.uid)
	}
	if d.Title == "" {
		t.Error("the dashboard has no title")
	}
	if d.SchemaVersion < 36 {
		t.Errorf("schemaVersion = %d, want a current one (36 or later)", d.SchemaVersion)
	}
	ids := map[int]string{}
	var placed []panel
	for _, p := range allPanels(d.Panels) {
		if p.ID <= 0 {
			t.Errorf("panel %q has no id", p.Title)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", other, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > grafanaGridWidth {
			t.Errorf("panel %d %q has gridPos %+v outside the %d-column grid", p.ID, p.Title, g, grafanaGridWidth)
		}
		for _, q := range placed {
			h := q.GridPos
			if g.X < h.X+h.W && h.X < g.X+g.W && g.Y < h.Y+h.H && h.Y < g.Y+g.H {
				t.Errorf("panels %d %q and %d %q overlap", p.ID, p.Title, q.ID, q.Title)
			}
		}
		placed = append(placed, p)
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != datasourceUID {
			t.Errorf("panel %d %q does not use the %s data source", p.ID, p.Title, datasourceUID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %d %q has no query", p.ID, p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource != nil && tg.Datasource.UID != datasourceUID {
				t.Errorf("panel %d %q query %s uses data source %q, want %s", p.ID, p.Title, tg.RefID, tg.Datasource.UID, datasourceUID)
			}
		}
	}

	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Type+" "+v.Name)
	}
	for _, want := range []string{"datasource DS_PROMETHEUS", "query namespace", "query target"} {
		if !slices.Contains(vars, want) {
			t.Errorf("template variables %v lack %q", vars, want)
		}
	}
}

// TestDashboard_StatusMappingsMatchTheRecorder checks that every panel on
// flagger_canary_status names its values as the recorder sets them.
func TestDashboard_StatusMappingsMatchTheRecorder(t *testing.T) {
	forEachDashboard(t, checkStatusMappings)
}

func checkStatusMappings(t *testing.T, _ dashboardCase, _ []byte, d dashboard) {
	want := map[string]string{
		strconv.Itoa(recorder.StatusRunning):   "Running",
		strconv.Itoa(recorder.StatusSucceeded): "Succeeded",
		strconv.Itoa(recorder.StatusFailed):    "Failed",
	}
	found := 0
	for _, p := range allPanels(d.Panels) {
		if !slices.ContainsFunc(p.Targets, func(q query) bool { return strings.Contains(q.Expr, "flagger_canary_status") }) {
			continue
		}
		found++
		got := map[string]string{}
		for _, m := range p.FieldConfig.Defaults.Mappings {
			if m.Type != "value" {
				continue
			}
			for v, o := range m.Options {
				got[v] = o.Text
			}
		}
		for v, text := range want {
			if got[v] != text {
				t.Errorf("panel %d %q maps status %s to %q, want %q", p.ID, p.Title, v, got[v], text)
			}
		}
	}
	if found == 0 {
		t.Error("no panel shows flagger_canary_status")
	}
}

// TestDashboard_QueriesUseExportedMetrics checks every PromQL expression of
// the panels and of the template variables.
func TestDashboard_QueriesUseExportedMetrics(t *testing.T) {
	forEachDashboard(t, checkQueries)
}

func checkQueries(t *testing.T, dc dashboardCase, _ []byte, d dashboard) {
	known := exportedMetrics(t)
	if dc.mesh != "" {
		mesh, ok := promtest.MeshByName(dc.mesh)
		if !ok {
			t.Fatalf("promtest knows no mesh %q", dc.mesh)
		}
		for _, m := range []string{mesh.Requests, mesh.Duration + "_bucket", mesh.Duration + "_count", mesh.Duration + "_sum"} {
			if m != "" && m != "_bucket" {
				known[m] = true
			}
		}
	}
	vars := map[string]bool{"__range": true, "__rate_interval": true, "__interval": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	used := map[string]bool{}
	check := func(where, expr string) {
		t.Helper()
		metrics, err := promqlMetrics(expr)
		if err != nil {
			t.Errorf("%s: %q: %v", where, expr, err)
			return
		}
		if len(metrics) == 0 {
			t.Errorf("%s: %q reads no metric", where, expr)
		}
		for _, m := range metrics {
			if !known[m] {
				t.Errorf("%s: %q reads %s, which neither Sluice (pkg/recorder, pkg/notifier) nor the mesh %q exports", where, expr, m, dc.mesh)
			}
			used[m] = true
		}
		for _, ref := range grafanaVarRef.FindAllStringSubmatch(expr, -1) {
			if name := ref[1] + ref[2]; !vars[name] {
				t.Errorf("%s: %q refers to $%s, which is no template variable", where, expr, name)
			}
		}
	}

	for _, p := range allPanels(d.Panels) {
		for _, tg := range p.Targets {
			check(fmt.Sprintf("panel %d %q query %s", p.ID, p.Title, tg.RefID), tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		for _, q := range []string{variableQuery(t, v.Query), v.Definition} {
			if q == "" {
				continue
			}
			expr, err := labelValuesSelector(q)
			if err != nil {
				t.Errorf("variable %s: %v", v.Name, err)
				continue
			}
			check("variable "+v.Name, expr)
		}
	}

	for _, m := range dc.mustRead {
		if !used[m] {
			t.Errorf("no query of the dashboard reads %s", m)
		}
	}
}

// grafanaVarRef matches $name and ${name} (with an optional :format).
var grafanaVarRef = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// variableQuery returns the query of a template variable, stored either as
// a string or, by newer Grafana versions, as an object with a query field.
func variableQuery(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	if len(raw) == 0 {
		return ""
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Errorf("variable query %s is neither a string nor an object: %v", raw, err)
	}
	return o.Query
}

var (
	labelValuesOf   = regexp.MustCompile(`^\s*label_values\((.+),\s*[a-zA-Z_]\w*\s*\)\s*$`)
	queryResultOf   = regexp.MustCompile(`^\s*query_result\((.+)\)\s*$`)
	labelValuesBare = regexp.MustCompile(`^\s*label_values\(\s*[a-zA-Z_]\w*\s*\)\s*$`)
)

// labelValuesSelector returns the PromQL inside one of the Prometheus data
// source's variable queries.
func labelValuesSelector(q string) (string, error) {
	if m := labelValuesOf.FindStringSubmatch(q); m != nil {
		return m[1], nil
	}
	if m := queryResultOf.FindStringSubmatch(q); m != nil {
		return m[1], nil
	}
	if labelValuesBare.MatchString(q) {
		return "", fmt.Errorf("%q reads no metric: name one, as label_values(metric, label)", q)
	}
	return "", fmt.Errorf("%q is no label_values(metric, label) nor query_result(expr) query", q)
}

// exportedMetrics returns the names of the series Sluice exports: the
// recorder's and the notifier dispatcher's metrics, as registered by the
// real code, with a histogram's _bucket, _sum and _count series.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := &capturingRegisterer{}
	if _, err := recorder.New(reg, "test", "kubernetes"); err != nil {
		t.Fatal(err)
	}
	d, err := notifier.NewDispatcher(notifier.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	known := map[string]bool{}
	for _, c := range reg.collectors {
		var suffixes []string
		switch c.(type) {
		case *prometheus.GaugeVec, *prometheus.CounterVec:
			suffixes = []string{""}
		case *prometheus.HistogramVec:
			suffixes = []string{"_bucket", "_sum", "_count"}
		case *prometheus.SummaryVec:
			suffixes = []string{"", "_sum", "_count"}
		default:
			t.Fatalf("collector %T has a kind this test does not know the series of", c)
		}
		for _, n := range describedNames(t, c) {
			for _, s := range suffixes {
				known[n+s] = true
			}
		}
	}
	for _, want := range []string{"flagger_info", "sluice_notifications_sent_total"} {
		if !known[want] {
			t.Fatalf("the allow-list %v lacks %s: exportedMetrics no longer finds the names", known, want)
		}
	}
	return known
}

// descName reads the name out of a prometheus.Desc, which has no getter.
var descName = regexp.MustCompile(`fqName: "([^"]+)"`)

func describedNames(t *testing.T, c prometheus.Collector) []string {
	t.Helper()
	ch := make(chan *prometheus.Desc, 16)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	var names []string
	for desc := range ch {
		m := descName.FindStringSubmatch(desc.String())
		if m == nil {
			t.Fatalf("cannot read the metric name in %s", desc)
		}
		names = append(names, m[1])
	}
	return names
}

// capturingRegisterer keeps what the code under test registers.
type capturingRegisterer struct {
	collectors []prometheus.Collector
}

func (r *capturingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return nil
}

func (r *capturingRegisterer) MustRegister(cs ...prometheus.Collector) {
	r.collectors = append(r.collectors, cs...)
}

func (r *capturingRegisterer) Unregister(prometheus.Collector) bool { return false }

// grafanaRange matches a Grafana interval variable used as a range or
// step, which PromQL cannot parse until Grafana substitutes it.
var grafanaRange = regexp.MustCompile(`\$(?:__rate_interval|__interval|__range|\{__rate_interval\}|\{__interval\}|\{__range\})`)

// promqlMetrics parses expr with Prometheus's parser, after putting a
// duration where Grafana would put its interval variables, and returns the
// metric names it reads, in order of appearance. Template variables inside
// label values need no substitution: they are plain strings to PromQL.
func promqlMetrics(expr string) ([]string, error) {
	parsed, err := parser.NewParser(parser.Options{}).ParseExpr(grafanaRange.ReplaceAllString(expr, "5m"))
	if err != nil {
		return nil, err
	}
	var names []string
	parser.Inspect(parsed, func(n parser.Node, _ []parser.Node) error {
		vs, ok := n.(*parser.VectorSelector)
		if !ok {
			return nil
		}
		name := vs.Name
		if name == "" {
			for _, m := range vs.LabelMatchers {
				if m.Name == "__name__" {
					name = m.Value
				}
			}
		}
		if name != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
		return nil
	})
	return names, nil
}

// TestPromQLMetrics_CatchesMistakes keeps the tokenizer honest: it must
// find the metric names and reject what the real parser would reject.
func TestPromQLMetrics_CatchesMistakes(t *testing.T) {
	good := []struct {
		expr string
		want []string
	}{
		{`flagger_canary_weight`, []string{"flagger_canary_weight"}},
		{`max by (namespace, name) (flagger_canary_status{namespace=~"$namespace", name=~"a}b"})`, []string{"flagger_canary_status"}},
		{`histogram_quantile(0.99, sum by (le) (rate(sluice_reconcile_duration_seconds_bucket[$__rate_interval])))`, []string{"sluice_reconcile_duration_seconds_bucket"}},
		{`sum(increase(a_total[1h])) / sum without (x) (increase(b_total[5m:1m])) > bool 0.5`, []string{"a_total", "b_total"}},
	}
	for _, g := range good {
		got, err := promqlMetrics(g.expr)
		if err != nil || !slices.Equal(got, g.want) {
			t.Errorf("promqlMetrics(%q) = %v, %v; want %v", g.expr, got, err, g.want)
		}
	}
	for _, bad := range []string{
		`sum(rate(flagger_canary_duration_seconds_bucket[5m])`,
		`flagger_canary_status{namespace=~$namespace}`,
		`flagger_canary_status{namespace="a"`,
		`rate(flagger_canary_successes_total[five])`,
		`sum by namespace (flagger_canary_total)`,
		`histogram_quantil(0.5, x_bucket)`,
		`flagger_canary_weight]`,
	} {
		if got, err := promqlMetrics(bad); err == nil {
			t.Errorf("promqlMetrics(%q) = %v, want an error", bad, got)
		}
	}
}

// TestGrafana_RendersTheDashboardConfigMap checks the kustomization: one
// ConfigMap with a stable name, holding every dashboard, that Grafana's
// sidecar picks up.
func TestGrafana_RendersTheDashboardConfigMap(t *testing.T) {
	objs := render(t, grafanaDir)
	key := objKey{kind: "ConfigMap", name: dashboardCM}
	if len(objs) != 1 {
		t.Errorf("%s renders %v, want only %+v", grafanaDir, keys(objs), key)
	}
	var cm corev1.ConfigMap
	decode(t, objs, key, &cm)
	if got := cm.Labels["grafana_dashboard"]; got != "1" {
		t.Errorf("label grafana_dashboard = %q, want \"1\"", got)
	}
	if cm.Namespace != "" {
		t.Errorf("namespace = %q, want none so that kubectl apply -n chooses it", cm.Namespace)
	}
	for _, dc := range dashboards {
		raw, _ := readDashboard(t, dc.file)
		if got, ok := cm.Data[dc.file]; !ok || got != string(raw) {
			t.Errorf("data[%s] is not the dashboard file (present: %t, %d bytes, want %d)", dc.file, ok, len(got), len(raw))
		}
	}
	if len(cm.Data) != len(dashboards) || len(cm.BinaryData) != 0 {
		t.Errorf("the ConfigMap holds %d data and %d binaryData keys, want the %d dashboards", len(cm.Data), len(cm.BinaryData), len(dashboards))
	}
}
