package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/webhook/token"
)

var update = flag.Bool("update", false, "rewrite the flag table in README.md")

// env returns a getenv that reads from m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestParseOptions_DefaultsMatchFlagger(t *testing.T) {
	t.Parallel()
	// Flagger's defaults, from its cmd/flagger/main.go.
	want := map[string]string{
		"kubeconfig":                 "",
		"master":                     "",
		"kubeconfig-qps":             "100",
		"kubeconfig-burst":           "250",
		"kubeconfig-service-mesh":    "",
		"metrics-server":             "http://prometheus:9090",
		"mesh-provider":              "istio",
		"namespace":                  "",
		"selector-labels":            "app,name,app.kubernetes.io/name",
		"include-label-prefix":       "",
		"enable-config-tracking":     "true",
		"ingress-annotations-prefix": "nginx.ingress.kubernetes.io",
		"ingress-class":              "",
		"enable-leader-election":     "false",
		"leader-election-namespace":  "kube-system",
		"slack-url":                  "",
		"slack-token":                "",
		"slack-proxy-url":            "",
		"slack-channel":              "",
		"slack-user":                 "flagger",
		"msteams-url":                "",
		"msteams-proxy-url":          "",
		"event-webhook":              "",
		"cluster-name":               "",
		"no-cross-namespace-refs":    "false",
		"threadiness":                "16", // Flagger's is 2: see DefaultThreadiness
		"port":                       "8080",
		"log-level":                  "debug",
		"zap-encoding":               "json",
		"version":                    "false",
		"control-loop-interval":      "10s",
		"zap-replace-globals":        "false",
	}
	got := map[string]string{}
	for _, row := range FlagTable() {
		got[row.Name] = row.Default
	}
	for name, def := range want {
		if g, ok := got[name]; !ok {
			t.Errorf("flag -%s is missing", name)
		} else if g != def {
			t.Errorf("flag -%s defaults to %q, Flagger's default is %q", name, g, def)
		}
	}
	// Sluice's own flags, which Flagger does not have.
	own := map[string]bool{"allow-running-flagger": true, "max-concurrent-canaries": true, "webhook-token-secret": true, "webhook-token-hosts": true}
	for name := range got {
		if _, ok := want[name]; !ok && !own[name] {
			t.Errorf("flag -%s is not one of Flagger's flags listed in this test", name)
		}
	}

	o, err := ParseOptions(nil, env(nil))
	if err != nil {
		t.Fatalf("ParseOptions(no args) = %v", err)
	}
	if o.MeshProvider != "istio" || o.Threadiness != DefaultThreadiness || o.Port != "8080" || !o.EnableConfigTracking ||
		o.LogLevel != "debug" || o.ZapEncoding != "json" || o.LeaseNamespace() != "kube-system" {
		t.Errorf("ParseOptions(no args) = %+v, want Flagger's defaults", o)
	}
	if w := o.NotWiredWarnings(); len(w) != 0 {
		t.Errorf("NotWiredWarnings() with defaults = %q, want none", w)
	}
}

func TestParseOptions_SetsEveryField(t *testing.T) {
	t.Parallel()
	args := []string{
		"-kubeconfig", "/k", "-master", "https://m", "-kubeconfig-qps", "7", "-kubeconfig-burst", "8",
		"-kubeconfig-service-mesh", "/mesh", "-metrics-server", "http://p:9090", "-mesh-provider", "linkerd",
		"-namespace", "apps", "-selector-labels", "app", "-include-label-prefix", "team", "-enable-config-tracking=false",
		"-ingress-annotations-prefix", "custom.io", "-ingress-class", "contour", "-enable-leader-election",
		"-leader-election-namespace", "sluice-system", "-slack-url", "https://s", "-slack-token", "tok",
		"-slack-proxy-url", "http://sp", "-slack-channel", "#c", "-slack-user", "u", "-msteams-url", "https://t",
		"-msteams-proxy-url", "http://tp", "-event-webhook", "https://e", "-cluster-name", "prod",
		"-no-cross-namespace-refs", "-threadiness", "4", "-port", "9090", "-log-level", "warn", "-zap-encoding", "console",
		"-control-loop-interval", "30s", "-zap-replace-globals", "-webhook-token-secret", "sluice-system/lt-token",
		"-webhook-token-hosts", "in-cluster,hooks.example.com",
	}
	got, err := ParseOptions(args, env(nil))
	if err != nil {
		t.Fatalf("ParseOptions = %v", err)
	}
	got.fs = nil
	want := Options{
		Kubeconfig: "/k", Master: "https://m", KubeconfigQPS: 7, KubeconfigBurst: 8, KubeconfigServiceMesh: "/mesh",
		MetricsServer: "http://p:9090", MeshProvider: "linkerd", Namespace: "apps", SelectorLabels: "app",
		IncludeLabelPrefix: "team", EnableConfigTracking: false, IngressAnnotationsPrefix: "custom.io", IngressClass: "contour",
		EnableLeaderElection: true, LeaderElectionNamespace: "sluice-system", SlackURL: "https://s", SlackToken: "tok",
		SlackProxyURL: "http://sp", SlackChannel: "#c", SlackUser: "u", MSTeamsURL: "https://t", MSTeamsProxyURL: "http://tp",
		EventWebhook: "https://e", ClusterName: "prod", NoCrossNamespaceRefs: true, Threadiness: 4, Port: "9090",
		LogLevel: "warn", ZapEncoding: "console", ControlLoopInterval: 30 * time.Second, ZapReplaceGlobals: true,
		WebhookTokenSecret: "sluice-system/lt-token", WebhookTokenHosts: "in-cluster,hooks.example.com",
	}
	if *got != want {
		t.Errorf("ParseOptions =\n%+v\nwant\n%+v", *got, want)
	}
	if got.LeaseNamespace() != "apps" {
		t.Errorf("LeaseNamespace() = %q, want -namespace (apps) to win over -leader-election-namespace, as in Flagger", got.LeaseNamespace())
	}
}

func TestParseOptions_EnvironmentOverridesFlagsLikeFlagger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env   string
		flag  string
		field func(*Options) string
	}{
		{"SLACK_URL", "-slack-url", func(o *Options) string { return o.SlackURL }},
		{"SLACK_TOKEN", "-slack-token", func(o *Options) string { return o.SlackToken }},
		{"SLACK_PROXY_URL", "-slack-proxy-url", func(o *Options) string { return o.SlackProxyURL }},
		{"MSTEAMS_URL", "-msteams-url", func(o *Options) string { return o.MSTeamsURL }},
		{"MSTEAMS_PROXY_URL", "-msteams-proxy-url", func(o *Options) string { return o.MSTeamsProxyURL }},
		{"EVENT_WEBHOOK_URL", "-event-webhook", func(o *Options) string { return o.EventWebhook }},
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Parallel()
			o, err := ParseOptions([]string{tt.flag, "from-flag"}, env(map[string]string{tt.env: "from-env"}))
			if err != nil {
				t.Fatalf("ParseOptions = %v", err)
			}
			if got := tt.field(o); got != "from-env" {
				t.Errorf("%s with %s set = %q, want the environment to win", tt.flag, tt.env, got)
			}
			o, err = ParseOptions([]string{tt.flag, "from-flag"}, env(map[string]string{tt.env: ""}))
			if err != nil {
				t.Fatalf("ParseOptions = %v", err)
			}
			if got := tt.field(o); got != "from-flag" {
				t.Errorf("%s with %s empty = %q, want the flag", tt.flag, tt.env, got)
			}
		})
	}
}

func TestParseOptions_RejectsInvalidValuesNamingTheFlag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		flag string
	}{
		{"unknown log level", []string{"-log-level", "trace"}, "-log-level"},
		{"unknown encoding", []string{"-zap-encoding", "logfmt"}, "-zap-encoding"},
		{"negative threadiness", []string{"-threadiness", "-1"}, "-threadiness"},
		{"zero threadiness", []string{"-threadiness", "0"}, "-threadiness"},
		{"non-numeric threadiness", []string{"-threadiness", "two"}, "-threadiness"},
		{"unknown mesh provider", []string{"-mesh-provider", "supergloo"}, "-mesh-provider"},
		{"unversioned smi", []string{"-mesh-provider", "smi"}, "-mesh-provider"},
		{"smi with an empty mesh", []string{"-mesh-provider", "smi:v1alpha3:"}, "-mesh-provider"},
		{"smi of an unknown version with a mesh", []string{"-mesh-provider", "smi:v1beta1:linkerd"}, "-mesh-provider"},
		{"zero qps", []string{"-kubeconfig-qps", "0"}, "-kubeconfig-qps"},
		{"negative burst", []string{"-kubeconfig-burst", "-5"}, "-kubeconfig-burst"},
		{"port not a number", []string{"-port", "http"}, "-port"},
		{"port out of range", []string{"-port", "70000"}, "-port"},
		{"bad namespace", []string{"-namespace", "Not_A_Namespace"}, "-namespace"},
		{"empty lease namespace", []string{"-leader-election-namespace", ""}, "-leader-election-namespace"},
		{"bad boolean", []string{"-enable-leader-election=maybe"}, "-enable-leader-election"},
		{"unknown flag", []string{"-control-plane", "x"}, "-control-plane"},
		{"token Secret without a namespace", []string{"-webhook-token-secret", "lt-token"}, "-webhook-token-secret"},
		{"bad token hosts", []string{"-webhook-token-hosts", "10.0.0.0/33"}, "-webhook-token-hosts"},
		{"positional argument", []string{"run"}, `"run"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := ParseOptions(tt.args, env(nil))
			if err == nil {
				t.Fatalf("ParseOptions(%q) = %+v, want an error", tt.args, o)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.flag) || strings.Contains(msg, "\n") {
				t.Errorf("ParseOptions(%q) error = %q, want one line naming %s", tt.args, msg, tt.flag)
			}
		})
	}
}

func TestParseOptions_AcceptsFlaggerProviderNames(t *testing.T) {
	t.Parallel()
	for _, p := range []string{
		flaggerv1beta1.ProviderAPISIX, flaggerv1beta1.ProviderAppMesh, flaggerv1beta1.ProviderAppMeshV1beta2,
		flaggerv1beta1.ProviderContour, flaggerv1beta1.ProviderGatewayAPIV1, flaggerv1beta1.ProviderGatewayAPIV1beta1,
		flaggerv1beta1.ProviderGloo, flaggerv1beta1.ProviderIstio, flaggerv1beta1.ProviderKnative,
		flaggerv1beta1.ProviderKubernetes, flaggerv1beta1.ProviderKuma, flaggerv1beta1.ProviderLinkerd,
		flaggerv1beta1.ProviderNGINX, flaggerv1beta1.ProviderOSM, flaggerv1beta1.ProviderSkipper,
		flaggerv1beta1.ProviderSMIV1alpha1, flaggerv1beta1.ProviderSMIV1alpha2, flaggerv1beta1.ProviderSMIV1alpha3,
		flaggerv1beta1.ProviderTraefik, "smi:v1alpha3:linkerd", "smi:v1alpha2:osm",
	} {
		o, err := ParseOptions([]string{"-mesh-provider", p}, env(nil))
		if err != nil {
			t.Errorf("-mesh-provider %s: %v", p, err)
			continue
		}
		if o.MeshProvider != p {
			t.Errorf("-mesh-provider %s gave %q", p, o.MeshProvider)
		}
	}
	o, err := ParseOptions([]string{"-mesh-provider", "gatewayapi"}, env(nil))
	if err != nil {
		t.Fatalf("-mesh-provider gatewayapi: %v", err)
	}
	if o.MeshProvider != flaggerv1beta1.ProviderGatewayAPIV1 {
		t.Errorf("-mesh-provider gatewayapi gave %q, want %q as in Flagger", o.MeshProvider, flaggerv1beta1.ProviderGatewayAPIV1)
	}
}

func TestParseOptions_VersionSkipsValidationAndHelpIsNotAnError(t *testing.T) {
	t.Parallel()
	o, err := ParseOptions([]string{"-version", "-log-level", "bogus"}, env(nil))
	if err != nil || !o.Version {
		t.Errorf("ParseOptions(-version -log-level bogus) = %+v, %v; want Version and no error", o, err)
	}
	for _, h := range []string{"-h", "-help", "--help"} {
		if _, err := ParseOptions([]string{h}, env(nil)); !errors.Is(err, flag.ErrHelp) {
			t.Errorf("ParseOptions(%s) error = %v, want flag.ErrHelp", h, err)
		}
	}
	var b bytes.Buffer
	usage(&b)
	for _, name := range []string{"-mesh-provider", "-slack-url", "-threadiness"} {
		if !strings.Contains(b.String(), name) {
			t.Errorf("usage does not list %s:\n%s", name, b.String())
		}
	}
}

func TestNotWiredWarnings_OneLinePerUnwiredFlagSetToANonDefaultValue(t *testing.T) {
	t.Parallel()
	o, err := ParseOptions([]string{
		"-control-loop-interval", "5s", // not wired: warns
		"-enable-config-tracking=false", // not wired, default true: warns
		"-mesh-provider", "linkerd",     // not wired: warns
		"-ingress-annotations-prefix", "nginx.ingress.kubernetes.io", // not wired but the default: silent
		"-threadiness", "3", // wired: silent
		"-port", "9090", // wired: silent
	}, env(map[string]string{"EVENT_WEBHOOK_URL": "https://hook"})) // set by environment: warns
	if err != nil {
		t.Fatalf("ParseOptions = %v", err)
	}
	got := o.NotWiredWarnings()
	want := []string{
		"flag -control-loop-interval is set but has no effect yet: Sluice requeues each Canary at its own analysis interval, so there is no loop to tune",
	}
	if !slices.Equal(got, want) {
		t.Errorf("NotWiredWarnings() =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFlagTable_ListsWhatIsWiredAndMatchesTheREADME(t *testing.T) {
	t.Parallel()
	wired := []string{
		"allow-running-flagger", "cluster-name", "enable-config-tracking", "enable-leader-election", "event-webhook", "include-label-prefix", "ingress-annotations-prefix", "ingress-class", "kubeconfig", "kubeconfig-burst",
		"kubeconfig-qps", "kubeconfig-service-mesh", "leader-election-namespace", "log-level", "master", "max-concurrent-canaries", "mesh-provider", "metrics-server",
		"msteams-proxy-url", "msteams-url", "namespace", "no-cross-namespace-refs", "port", "selector-labels",
		"slack-channel", "slack-proxy-url", "slack-token", "slack-url", "slack-user", "threadiness", "version",
		"webhook-token-hosts", "webhook-token-secret", "zap-encoding", "zap-replace-globals",
	}
	var gotWired []string
	for _, row := range FlagTable() {
		if row.Wired {
			gotWired = append(gotWired, row.Name)
		} else if row.NotWiredReason == "" {
			t.Errorf("flag -%s is not wired but has no reason", row.Name)
		}
		if row.Description == "" || strings.Contains(row.Description, "\n") {
			t.Errorf("flag -%s description %q is not one line", row.Name, row.Description)
		}
	}
	if !slices.Equal(gotWired, wired) {
		t.Errorf("wired flags = %q, want %q", gotWired, wired)
	}
	for name := range notWired {
		if newFlagSet(&Options{}).Lookup(name) == nil {
			t.Errorf("notWired names -%s, which is not a flag", name)
		}
	}
	if got, want := len(NotWiredFlags()), len(notWired); got != want {
		t.Errorf("NotWiredFlags() has %d flags, want %d", got, want)
	}

	// The README's flag table sits between two markers and must equal
	// FlagTableMarkdown; -update rewrites it.
	readme := filepath.Join("..", "..", "README.md")
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- flags:begin -->\n", "<!-- flags:end -->"
	before, rest, ok1 := strings.Cut(string(data), begin)
	table, after, ok2 := strings.Cut(rest, end)
	if !ok1 || !ok2 {
		t.Fatalf("README.md lacks the %q and %q markers around the flag table", begin, end)
	}
	got := FlagTableMarkdown()
	if *update {
		if err := os.WriteFile(readme, []byte(before+begin+got+end+after), 0o644); err != nil {
			t.Fatal(err)
		}
		table = got
	}
	if table != got {
		t.Errorf("README.md's flag table is stale; run `go test ./cmd/sluice -run TestFlagTable -update`:\n%s", got)
	}
}

func TestLogNotWired_WarnsAtWarningLevelAndListsTheFlags(t *testing.T) {
	t.Parallel()
	o, err := ParseOptions([]string{"-control-loop-interval", "5s", "-log-level", "info"}, env(nil))
	if err != nil {
		t.Fatalf("ParseOptions = %v", err)
	}
	var b bytes.Buffer
	logNotWired(newLogger(o, &b), o)

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q is not JSON: %v", l, err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want a warning and the list:\n%s", len(lines), b.String())
	}
	if lines[0]["level"] != "warn" || lines[0]["msg"] != "flag -control-loop-interval is set but has no effect yet: Sluice requeues each Canary at its own analysis interval, so there is no loop to tune" {
		t.Errorf("first line = %v, want the -control-loop-interval warning at level warn", lines[0])
	}
	flags, _ := lines[1]["flags"].([]any)
	if lines[1]["level"] != "info" || len(flags) != len(notWired) {
		t.Errorf("second line = %v, want an info line listing the %d not-wired flags", lines[1], len(notWired))
	}
}

func TestNewLogger_HonoursLevelAndEncoding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		level, encoding            string
		wantDebug, wantInfo, wantJ bool
	}{
		{"debug", "json", true, true, true},
		{"info", "json", false, true, true},
		{"warning", "console", false, false, false},
		{"warn", "json", false, false, true},
		{"error", "json", false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.level+"/"+tt.encoding, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			log := newLogger(&Options{LogLevel: tt.level, ZapEncoding: tt.encoding}, &b)
			log.V(1).Info("debug-line")
			log.Info("info-line")
			log.Error(errors.New("boom"), "error-line")
			out := b.String()
			if got := strings.Contains(out, "debug-line"); got != tt.wantDebug {
				t.Errorf("debug line logged = %v, want %v:\n%s", got, tt.wantDebug, out)
			}
			if got := strings.Contains(out, "info-line"); got != tt.wantInfo {
				t.Errorf("info line logged = %v, want %v:\n%s", got, tt.wantInfo, out)
			}
			if !strings.Contains(out, "error-line") {
				t.Errorf("error line not logged:\n%s", out)
			}
			if got := strings.HasPrefix(out, "{"); got != tt.wantJ {
				t.Errorf("JSON output = %v, want %v:\n%s", got, tt.wantJ, out)
			}
		})
	}
}

func TestNewWebhookCaller_WiresTheTokenSecretAndHosts(t *testing.T) {
	t.Parallel()
	o, err := ParseOptions([]string{"-webhook-token-secret", "sluice-system/lt-token", "-webhook-token-hosts", "flagger-loadtester.test"}, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c, err := newWebhookCaller(nil, o)
	if err != nil {
		t.Fatal(err)
	}
	src, ok := c.Token.(*token.Secret)
	if !ok || src.Secret.String() != "sluice-system/lt-token" || c.TokenHosts.String() != "flagger-loadtester.test" {
		t.Errorf("caller = %+v, want the token of sluice-system/lt-token for flagger-loadtester.test", c)
	}
	o, err = ParseOptions(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c, err := newWebhookCaller(nil, o); err != nil || c.Token != nil {
		t.Errorf("without -webhook-token-secret the caller = %+v, %v; want no token", c, err)
	}
}
