package metrics

import (
	"context"
	"flag"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sluicedev/sluice/internal/testenv"
	"github.com/sluicedev/sluice/pkg/metrics/promtest"
)

// env is the API server of the template tests.
var env *testenv.Env

// realProm is the Prometheus server of the builtin-query tests, started by
// the first test that needs it and stopped by TestMain.
var realProm struct {
	once     sync.Once
	server   *promtest.Server
	exporter *httptest.Server
	err      error
}

func TestMain(m *testing.M) {
	flag.Parse()
	if fuzzingOnly() {
		// The fuzz targets need no API server; each fuzz worker is a
		// process of its own, which would otherwise start one.
		os.Exit(m.Run())
	}
	var err error
	env, err = testenv.Start(testenv.Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the API server: %v\n", err)
		os.Exit(1)
	}
	// The keptn provider's tests need Keptn's kinds: minimal CRDs of our own.
	if _, err := envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join("testdata", "crds")}, ErrorIfPathMissing: true,
	}); err != nil {
		fmt.Fprintf(os.Stderr, "installing the test CRDs: %v\n", err)
		_ = env.Stop()
		os.Exit(1)
	}
	code := m.Run()
	if err := realProm.server.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping prometheus: %v\n", err)
	}
	if realProm.exporter != nil {
		realProm.exporter.Close()
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stopping the API server: %v\n", err)
	}
	os.Exit(code)
}

// fuzzingOnly reports whether this process only fuzzes or lists tests: a
// go test -fuzz run (its coordinator and workers) or go test -list.
func fuzzingOnly() bool {
	for _, name := range []string{"test.fuzz", "test.fuzzworker", "test.list"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" && f.Value.String() != "false" {
			return true
		}
	}
	return false
}

// startPrometheus starts, once, Debian's Prometheus scraping the traffic
// of meshTraffic, one job per mesh, and waits until every job has been
// scraped three times. It fails the test, never skips it, when the binary
// is missing.
func startPrometheus(t *testing.T) *promtest.Server {
	t.Helper()
	realProm.once.Do(func() {
		if _, err := promtest.FindBinary(); err != nil {
			realProm.err = err
			return
		}
		realProm.exporter = httptest.NewServer(meshTraffic().Handler())
		targets := map[string]string{}
		for _, m := range promtest.Meshes {
			targets[m.Name] = realProm.exporter.URL + "/" + m.Name
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		realProm.server, realProm.err = promtest.Start(ctx, targets)
		if realProm.err == nil {
			realProm.err = realProm.server.WaitForScrapes(ctx, 3)
		}
	})
	if realProm.err != nil {
		t.Fatalf("real Prometheus: %v", realProm.err)
	}
	return realProm.server
}
