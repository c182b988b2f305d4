package notifier

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// namespace creates a namespace for one test and deletes it afterwards.
func namespace(t *testing.T) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "notifier-"}}
	if err := env.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	return ns.Name
}

func create(t *testing.T, objs ...client.Object) {
	t.Helper()
	for _, o := range objs {
		if err := env.Client.Create(context.Background(), o); err != nil {
			t.Fatalf("creating %T %s: %v", o, o.GetName(), err)
		}
	}
}

func provider(ns, name, kind, address string, secret string) *flaggerv1beta1.AlertProvider {
	ap := &flaggerv1beta1.AlertProvider{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec:       flaggerv1beta1.AlertProviderSpec{Type: kind, Address: address},
	}
	if secret != "" {
		ap.Spec.SecretRef = &flaggerv1beta1.SecretReference{Name: secret}
	}
	return ap
}

func secret(ns, name string, data map[string]string) *corev1.Secret {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Data: map[string][]byte{}}
	for k, v := range data {
		s.Data[k] = []byte(v)
	}
	return s
}

func TestProviderConfig_ReadsTheAlertProviderAndItsSecret(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	full := provider(ns, "full", "slack", "https://hooks.slack.com/spec", "full")
	full.Spec.Channel, full.Spec.Username, full.Spec.Proxy = "deploys", "sluice", "http://spec-proxy:3128"
	create(t,
		provider(ns, "plain", "msteams", "https://teams.example/hook", ""),
		full,
		secret(ns, "full", map[string]string{
			"address": "https://slack.com/api/chat.postMessage", "token": "xoxb-1", "proxy": "http://secret-proxy:3128", "username": "bot",
		}),
		provider(ns, "token-only", "slack", "", "token-only"),
		secret(ns, "token-only", map[string]string{"token": "xoxb-2"}),
		provider(ns, "no-secret", "discord", "", "absent"),
		provider(ns, "no-address", "rocket", "", "no-address"),
		secret(ns, "no-address", map[string]string{"username": "bot"}),
	)
	cases := []struct {
		name     string
		kind     string
		cfg      Config
		err      string
		notFound bool
	}{
		{name: "plain", kind: "msteams", cfg: Config{Address: "https://teams.example/hook", Channel: "general", Username: "flagger"}},
		{name: "full", kind: "slack", cfg: Config{
			Address: "https://slack.com/api/chat.postMessage", Token: "xoxb-1", Channel: "deploys", Username: "bot", Proxy: "http://secret-proxy:3128",
		}},
		{name: "token-only", kind: "slack", cfg: Config{Token: "xoxb-2", Channel: "general", Username: "flagger"}},
		{name: "absent", err: "alert provider " + ns + "/absent not found", notFound: true},
		{name: "no-secret", err: "secret " + ns + "/absent of alert provider " + ns + "/no-secret not found", notFound: true},
		{name: "no-address", err: "alert provider " + ns + "/no-address has no address"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			kind, cfg, err := ProviderConfig(context.Background(), env.Client, client.ObjectKey{Namespace: ns, Name: tc.name})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || apierrors.IsNotFound(err) != tc.notFound {
					t.Fatalf("ProviderConfig = %v, want an error containing %q (NotFound %v)", err, tc.err, tc.notFound)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if kind != tc.kind || cfg != tc.cfg {
				t.Errorf("ProviderConfig = %s %+v, want %s %+v", kind, cfg, tc.kind, tc.cfg)
			}
		})
	}
}

// withAlerts is a Canary in ns with the given alerts.
func withAlerts(ns string, alerts ...flaggerv1beta1.CanaryAlert) *flaggerv1beta1.Canary {
	return &flaggerv1beta1.Canary{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "podinfo"},
		Spec: flaggerv1beta1.CanarySpec{
			TargetRef: flaggerv1beta1.LocalObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "podinfo"},
			Service:   flaggerv1beta1.CanaryService{Port: 9898},
			Analysis: &flaggerv1beta1.CanaryAnalysis{
				Interval: "1m", Threshold: 5, StepWeight: ptr.To[int32](10), MaxWeight: ptr.To[int32](50), Alerts: alerts,
			},
		},
	}
}

func alert(name string, severity Severity, ref, refNamespace string) flaggerv1beta1.CanaryAlert {
	return flaggerv1beta1.CanaryAlert{Name: name, Severity: severity, ProviderRef: flaggerv1beta1.CrossNamespaceObjectReference{Name: ref, Namespace: refNamespace}}
}

// texts returns the texts of the messages a path received, in order.
func texts(srv *service, path string, candidates ...string) []string {
	var out []string
	for _, r := range srv.requests() {
		if r.Path != path {
			continue
		}
		for _, c := range candidates {
			if bytes.Contains(r.Body, []byte(c)) {
				out = append(out, c)
			}
		}
	}
	return out
}

func drain(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestDispatcher_SendsEachAlertTheSeveritiesItAsksFor(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	srv := newService(t, answer(http.StatusOK, "1"))
	global := newService(t, answer(http.StatusOK, "1"))
	for _, name := range []string{"info", "warn", "error", "empty"} {
		create(t, provider(ns, name, "msteams", srv.URL+"/"+name, ""))
	}
	cd := withAlerts(ns,
		alert("a-info", flaggerv1beta1.SeverityInfo, "info", ""),
		alert("a-warn", flaggerv1beta1.SeverityWarn, "warn", ns),
		alert("a-error", flaggerv1beta1.SeverityError, "error", ""),
		alert("a-empty", "", "empty", ""),
	)
	d, _ := newDispatcher(t, Options{Reader: env.Client, Global: GlobalConfig{MSTeamsURL: global.URL}})
	n, err := d.ForCanary(context.Background(), cd)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Severity{flaggerv1beta1.SeverityInfo, flaggerv1beta1.SeverityWarn, flaggerv1beta1.SeverityError} {
		if err := n.Post(context.Background(), Message{Canary: cd.Name, Namespace: ns, Severity: s, Text: "text-" + string(s)}); err != nil {
			t.Fatal(err)
		}
	}
	drain(t, d)
	all := []string{"text-info", "text-warn", "text-error"}
	want := map[string][]string{
		"/info":  all,
		"/empty": all,
		"/warn":  {"text-warn", "text-error"},
		"/error": {"text-error"},
	}
	for path, w := range want {
		got := texts(srv, path, all...)
		if !sameSet(got, w) {
			t.Errorf("%s received %v, want %v", path, got, w)
		}
	}
	if n := len(global.requests()); n != 0 {
		t.Errorf("the global notifier received %d messages of a Canary with alerts, want 0", n)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, s := range a {
		seen[s]++
	}
	for _, s := range b {
		seen[s]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

func TestDispatcher_ReportsUnusableAlertsAndStillDeliversToTheOthers(t *testing.T) {
	t.Parallel()
	ns, other := namespace(t), namespace(t)
	srv := newService(t, answer(http.StatusOK, "1"))
	create(t, provider(ns, "teams", "msteams", srv.URL+"/teams", ""), provider(other, "elsewhere", "msteams", srv.URL+"/elsewhere", ""))
	cd := withAlerts(ns,
		alert("works", "", "teams", ""),
		alert("missing", "", "nope", ""),
		alert("cross", "", "elsewhere", other),
	)
	d, _ := newDispatcher(t, Options{Reader: env.Client, NoCrossNamespaceRefs: true})
	n, err := d.ForCanary(context.Background(), cd)
	if err == nil {
		t.Fatal("ForCanary = nil error, want the unusable alerts reported")
	}
	for _, want := range []string{
		`alert "missing": alert provider ` + ns + `/nope not found`,
		`alert "cross": alert provider ` + other + `/elsewhere is in another namespace`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if !apierrors.IsNotFound(err) {
		t.Errorf("error %v does not wrap the NotFound of the missing provider", err)
	}
	if err := n.Post(context.Background(), warn); err != nil {
		t.Fatal(err)
	}
	drain(t, d)
	if got := texts(srv, "/teams", warn.Text); len(got) != 1 {
		t.Errorf("the usable provider received %v, want the message", got)
	}
	if got := texts(srv, "/elsewhere", warn.Text); len(got) != 0 {
		t.Errorf("the provider in another namespace received %v, want nothing", got)
	}
}

func TestDispatcher_PostReadsTheCanaryOrFallsBackToTheGlobalNotifier(t *testing.T) {
	t.Parallel()
	ns := namespace(t)
	srv := newService(t, answer(http.StatusOK, "1"))
	global := newService(t, answer(http.StatusOK, "1"))
	create(t, provider(ns, "teams", "msteams", srv.URL+"/teams", ""))
	withAlert := withAlerts(ns, alert("teams", flaggerv1beta1.SeverityWarn, "teams", ""))
	without := withAlerts(ns)
	without.Name = "no-alerts"
	create(t, withAlert, without)
	d, _ := newDispatcher(t, Options{Reader: env.Client, Global: GlobalConfig{MSTeamsURL: global.URL + "/global"}})
	for _, m := range []Message{
		{Canary: "podinfo", Namespace: ns, Severity: flaggerv1beta1.SeverityWarn, Text: "msg-alert"},
		{Canary: "podinfo", Namespace: ns, Severity: flaggerv1beta1.SeverityInfo, Text: "msg-filtered"},
		{Canary: "no-alerts", Namespace: ns, Severity: flaggerv1beta1.SeverityInfo, Text: "msg-noalerts"},
		{Canary: "deleted", Namespace: ns, Severity: flaggerv1beta1.SeverityError, Text: "msg-deleted"},
	} {
		if err := d.Post(context.Background(), m); err != nil {
			t.Fatalf("Post(%s): %v", m.Text, err)
		}
	}
	drain(t, d)
	all := []string{"msg-alert", "msg-filtered", "msg-noalerts", "msg-deleted"}
	if got := texts(srv, "/teams", all...); !sameSet(got, []string{"msg-alert"}) {
		t.Errorf("the AlertProvider received %v, want [msg-alert]", got)
	}
	if got := texts(global, "/global", all...); !sameSet(got, []string{"msg-noalerts", "msg-deleted"}) {
		t.Errorf("the global notifier received %v, want the Canary without alerts and the deleted one", got)
	}
}

func TestDispatcher_PostWithoutReaderUsesTheGlobalNotifier(t *testing.T) {
	t.Parallel()
	global := newService(t, answer(http.StatusOK, "1"))
	d, _ := newDispatcher(t, Options{Global: GlobalConfig{MSTeamsURL: global.URL}})
	if err := d.Post(context.Background(), warn); err != nil {
		t.Fatal(err)
	}
	n, err := d.ForCanary(context.Background(), withAlerts("test", alert("a", "", "p", "")))
	if err == nil || !strings.Contains(err.Error(), "no Kubernetes reader") {
		t.Errorf("ForCanary with alerts and no reader = %v, want an error", err)
	}
	if err := n.Post(context.Background(), warn); err != nil {
		t.Errorf("Post to a Canary without usable alerts = %v, want nil", err)
	}
	drain(t, d)
	if got := len(global.requests()); got != 1 {
		t.Errorf("the global notifier received %d messages, want 1", got)
	}
}
