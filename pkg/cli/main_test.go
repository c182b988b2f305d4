package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/sluicedev/sluice/internal/testenv"
	"github.com/sluicedev/sluice/pkg/router"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the output")

var (
	env *testenv.Env
	// kubeconfig reaches the test API server as the cluster admin
	// sluice-test.
	kubeconfig string
	// watcher is an admin client that can watch.
	watcher client.WithWatch
)

// testNow is the fixed clock of every command in the tests.
var testNow = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

// testWidth is the fixed terminal width of the tests.
const testWidth = 100

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctrl.SetLogger(logr.Discard())
	var err error
	env, err = testenv.Start(testenv.Options{Istio: true, GatewayAPI: true})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the API server: %v\n", err)
		return 1
	}
	defer func() { _ = env.Stop() }()
	if err := router.AddToScheme(env.Scheme); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if watcher, err = client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	dir, err := os.MkdirTemp("", "kubectl-sluice-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = os.RemoveAll(dir) }()
	kubeconfig = filepath.Join(dir, "kubeconfig")
	if err := env.Kubeconfig(kubeconfig); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// result is what one run of kubectl-sluice printed and returned.
type result struct {
	out, err string
	code     int
}

// sluice runs kubectl-sluice in process with the test kubeconfig, the fixed
// clock and width, and output that is not a terminal.
func sluice(t *testing.T, args ...string) result {
	t.Helper()
	return sluiceIn(t.Context(), t, Options{}, append([]string{"--kubeconfig", kubeconfig}, args...)...)
}

// sluiceIn runs kubectl-sluice with a context and options; unset output,
// clock, width and terminal are the tests' own.
func sluiceIn(ctx context.Context, t *testing.T, o Options, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	w := o.Streams.Out
	if w == nil {
		w = &out
	}
	o.Streams = genericiooptions.IOStreams{In: strings.NewReader(""), Out: w, ErrOut: &errOut}
	if o.Now == nil {
		o.Now = func() time.Time { return testNow }
	}
	if o.Width == 0 {
		o.Width = testWidth
	}
	if o.Terminal == nil {
		o.Terminal = ptr.To(false)
	}
	code := Main(ctx, args, o)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// sluiceWith runs kubectl-sluice writing its output to out, for commands
// that run until the context ends.
func sluiceWith(ctx context.Context, t *testing.T, out io.Writer, args ...string) result {
	t.Helper()
	return sluiceWithOptions(ctx, t, out, Options{}, args...)
}

func sluiceWithOptions(ctx context.Context, t *testing.T, out io.Writer, o Options, args ...string) result {
	t.Helper()
	o.Streams.Out = out
	return sluiceIn(ctx, t, o, args...)
}

func ptrBool(b bool) *bool { return &b }

// syncBuffer is a buffer that a running command writes while the test
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns nil once the buffer holds at least n lines.
func (b *syncBuffer) lines(n int) error {
	if got := strings.Count(b.String(), "\n"); got < n {
		return fmt.Errorf("%d lines, want %d: %q", got, n, b.String())
	}
	return nil
}

func (b *syncBuffer) contains(s string) error {
	if !strings.Contains(b.String(), s) {
		return fmt.Errorf("no %q in %q", s, b.String())
	}
	return nil
}

// ok fails the test unless the run succeeded.
func (r result) ok(t *testing.T) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit code %d, stderr: %s", r.code, r.err)
	}
	return r
}

// failsWith checks the contract for bad input: exit code 1 and exactly one
// line on standard error, containing want.
func (r result) failsWith(t *testing.T, want string) {
	t.Helper()
	if r.code != 1 {
		t.Errorf("exit code = %d, want 1 (stdout %q, stderr %q)", r.code, r.out, r.err)
	}
	if lines := strings.Split(strings.TrimRight(r.err, "\n"), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
		t.Errorf("stderr is not one line starting with \"error: \":\n%s", r.err)
	}
	if !strings.Contains(r.err, want) {
		t.Errorf("stderr = %q, want it to contain %q", r.err, want)
	}
}

// golden compares output with testdata/<name>.golden; -update rewrites it.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o600); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept it)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// newNamespace creates a namespace with a fixed name, so that golden
// output can name it.
func newNamespace(t *testing.T, name string) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := env.Client.Create(t.Context(), ns); err != nil {
		t.Fatalf("creating namespace %s: %v", name, err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(context.Background(), ns) })
	return name
}

// eventually retries check until it returns nil, for at most 10s.
func eventually(t *testing.T, what string, check func() error) {
	const timeout = 10 * time.Second
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
