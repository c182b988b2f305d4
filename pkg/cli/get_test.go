package cli

import (
	"context"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// TestGet_ShowsTheCanaryAsATree checks the tree of played releases: the
// workloads, Services, the VirtualService's weights as Sluice's router
// set them, the webhooks and the analysis history.
func TestGet_ShowsTheCanaryAsATree(t *testing.T) {
	t.Parallel()
	for _, scenario := range []string{"failed-threshold", "progressing-failed-check", "waiting-promotion"} {
		t.Run(scenario, func(t *testing.T) {
			t.Parallel()
			ns := newNamespace(t, "get-"+scenario)
			p := scenarios[scenario](ns)
			rebase(p)
			write(t, p)
			golden(t, "get-"+scenario, sluice(t, "get", "podinfo", "-n", ns).ok(t).out)
		})
	}
}

func TestGet_OutputYAMLIsTheCanary(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "get-yaml")
	p := scenarios["failed-threshold"](ns)
	rebase(p)
	write(t, p)
	r := sluice(t, "get", "podinfo", "-n", ns, "-o", "yaml").ok(t)
	var cd flaggerv1beta1.Canary
	if err := yaml.Unmarshal([]byte(r.out), &cd); err != nil {
		t.Fatalf("-o yaml: %v\n%s", err, r.out)
	}
	if cd.Kind != "Canary" || cd.Status.Phase != flaggerv1beta1.CanaryPhaseFailed || len(cd.Status.Analysis) == 0 {
		t.Errorf("-o yaml printed kind %q phase %q with %d checks", cd.Kind, cd.Status.Phase, len(cd.Status.Analysis))
	}
}

// TestGet_WatchInAPipeAppendsPlainLines: with output that is not a
// terminal, --watch appends one line per change reported by the watch,
// with no escape codes.
func TestGet_WatchInAPipeAppendsPlainLines(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "get-watch")
	p := scenarios["progressing-failed-check"](ns)
	rebase(p)
	f := write(t, p)

	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan result, 1)
	go func() {
		done <- sluiceWith(ctx, t, out, "--kubeconfig", kubeconfig, "get", "podinfo", "-n", ns, "--watch")
	}()
	eventually(t, "the first line", func() error { return out.lines(1) })

	// The controller's next step, the rollback, arrives as a status write.
	p.tick(10*time.Second, faulty(80))
	cd := &flaggerv1beta1.Canary{}
	if err := env.Client.Get(t.Context(), client.ObjectKeyFromObject(f.cd), cd); err != nil {
		t.Fatal(err)
	}
	rebase(p)
	cd.Status = p.status
	if err := env.Client.Status().Update(t.Context(), cd); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a second line", func() error { return out.lines(2) })
	cancel()
	r := <-done
	if r.code != 0 {
		t.Fatalf("get --watch ended with %d: %s", r.code, r.err)
	}
	got := out.String()
	if strings.ContainsRune(got, '\x1b') {
		t.Errorf("get --watch wrote escape codes into a pipe:\n%q", got)
	}
	golden(t, "get-watch-pipe", got)
}

func TestGet_WatchOnATerminalRedraws(t *testing.T) {
	t.Parallel()
	ns := newNamespace(t, "get-watch-tty")
	p := scenarios["progressing-failed-check"](ns)
	rebase(p)
	write(t, p)
	out := &syncBuffer{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan result, 1)
	go func() {
		done <- sluiceWithOptions(ctx, t, out, Options{Terminal: ptrBool(true)}, "--kubeconfig", kubeconfig, "get", "podinfo", "-n", ns, "-w")
	}()
	eventually(t, "the tree", func() error { return out.contains("Watching for changes") })
	cancel()
	<-done
	if got := out.String(); !strings.HasPrefix(got, clearScreen+"Canary:    get-watch-tty/podinfo\n") {
		t.Errorf("on a terminal, --watch should clear the screen and draw the tree:\n%q", got)
	}
}
