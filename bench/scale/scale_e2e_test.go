//go:build e2e

package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/sluicedev/sluice/internal/testenv"
)

// TestBenchmark_MeasuresEveryPhaseOfASmallRun runs the whole benchmark on
// Sluice built from this tree at CI size (5 Canaries, 3 more unrelated
// objects of each kind in phase 5, 2 releases of one iteration, one of
// them failing in phase 4) and checks that every phase
// measured something: the figures come from the audit log, /proc and the
// watched Canaries, and the release checks (the failing one rolled back,
// the other promoted) passed. The figures themselves are not asserted:
// they are for `make bench-scale`.
func TestBenchmark_MeasuresEveryPhaseOfASmallRun(t *testing.T) {
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sluice := filepath.Join(dir, "sluice")
	build := exec.CommandContext(t.Context(), "go", "build", "-o", sluice, "./cmd/sluice")
	build.Dir, build.Stderr = root, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatalf("building sluice: %v", err)
	}

	ctrl.SetLogger(logr.Discard())
	var log bytes.Buffer
	cfg := config{
		N: 5, M: 2, Noise: 3, Interval: 10 * time.Second, Iterations: 1, Threshold: 1, KCMQPS: 300,
		Settle: time.Second, Idle: 5 * time.Second, SlowDelay: 30 * time.Second,
		Controllers: []controllerSpec{{Label: "sluice", Command: shellQuote(sluice) + commonFlags}},
		Dir:         filepath.Join(dir, "bench"), JSON: filepath.Join(dir, "bench.json"), Log: &log,
	}
	var out bytes.Buffer
	ok, err := benchmark(t.Context(), cfg, &out)
	t.Logf("table:\n%s", out.String())
	if err != nil || !ok {
		t.Fatalf("benchmark: ok %t, %v; its log:\n%s", ok, err, log.String())
	}

	data, err := os.ReadFile(cfg.JSON)
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatalf("reading %s: %v", cfg.JSON, err)
	}
	if len(rep.Results) != 1 {
		t.Fatalf("%d results in the JSON file, want 1", len(rep.Results))
	}
	r := rep.Results[0]
	checks := []struct {
		what string
		ok   bool
	}{
		{"the bed was measured", r.Bed.ReadySeconds > 0 && r.Bed.RollSeconds > 0 && r.Bed.PerRoll.Count == 2},
		{"5 Canaries were Initialized", r.Init.Canaries == 5 && r.Init.Seconds > 0 && r.Init.VsBed > 0},
		{"phase 1's requests come from the audit log", r.Init.Requests.Writes > 0},
		{"the idle phase lasted about 5s", r.Idle.Seconds >= 4.5 && r.Idle.Seconds < 15},
		{"the controller's memory was read", r.Idle.RSSMiB > 0 && r.PeakRSSMiB >= r.Idle.RSSMiB},
		{"phase 5 measured the idle controller again after the noise", r.Noise.Objects == 3 && r.Noise.Idle.RSSMiB > 0 && r.Noise.Idle.Seconds >= 4.5},
		{"phase 3 promoted both", r.Rollout.Succeeded == 2 && r.Rollout.Failed == 0},
		{"phase 3 saw the analysis steps", r.Rollout.Lateness.Count >= 2 && r.Rollout.RolloutSeconds.Count == 2},
		{"phase 3 attributed writes and events to the releases", r.Rollout.WritesPerRollout > 0 && r.Rollout.EventsPerRollout > 0},
		{"phase 4 rolled the failing release back and promoted the other", r.Failing.Failing == 1 && r.Failing.Failed == 1 && r.Failing.Succeeded == 1},
		{"the controller's CPU time was read", r.Rollout.CPUSeconds > 0},
		{"Sluice's workqueue metrics were read", r.Rollout.Queue.Available && r.Rollout.Queue.Reconciles > 0},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: not so", c.what)
		}
	}
	if t.Failed() {
		t.Logf("the results:\n%s\nthe benchmark's log:\n%s", data, log.String())
	}
}
