// Command scale is Sluice's scale benchmark (issue 19): on the e2e
// harness's local control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, KWOK) it measures a canary
// controller run as a process, phase by phase, and prints one table and a
// JSON file:
//
//  0. the bed: N plain Deployments becoming ready, M = N/10 rolling;
//  1. N target Deployments with Canaries (kubernetes provider, a metric
//     answered at once by an in-process Prometheus API stub), beside N
//     unrelated Deployments, ConfigMaps and Secrets: time to all
//     Initialized;
//  2. idle: the controller's API requests per minute by verb and resource
//     (from the API server's audit log), CPU seconds per minute and RSS
//     (from /proc);
//  3. M simultaneous releases: step lateness, requests and events per
//     release, time to all Succeeded;
//  4. the same with a tenth of the releases failing their metric: those
//     must roll back and no other.
//
// Each controller gets its own control plane. -controller-cmd runs any
// controller started like Sluice and Flagger are, so two builds, or Sluice
// and Flagger v1.44.0, are compared side by side in one run (-compare).
// Run it through `make bench-scale N=...`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"
)

// config is the benchmark's settings, from the flags.
type config struct {
	N          int           `json:"n"`
	M          int           `json:"m"`
	Noise      int           `json:"noise"`
	Interval   time.Duration `json:"interval"`
	Iterations int           `json:"iterations"`
	Threshold  int           `json:"threshold"`
	// Settle is the wait between phase 1 and the idle measurement.
	Settle    time.Duration `json:"settle"`
	Idle      time.Duration `json:"idle"`
	SlowHooks bool          `json:"slowHooks"`
	SlowDelay time.Duration `json:"slowDelay"`
	// Pprof saves the controller's heap profiles after phases 1, 2 and 3,
	// a CPU profile and a goroutine dump during phase 3.
	Pprof bool `json:"pprof"`
	// KCMQPS is kube-controller-manager's client QPS (burst twice that);
	// 0 keeps its default.
	KCMQPS int `json:"kcmQPS"`
	// PhaseTimeout caps phases 1, 3 and 4; a phase cut short reports how
	// far it got. 0 leaves the limits that grow with N.
	PhaseTimeout time.Duration `json:"phaseTimeout"`
	// PhaseTimeoutOnly, when set, limits PhaseTimeout to the controller
	// of that label (Flagger, whose phases take many times Sluice's).
	PhaseTimeoutOnly string `json:"phaseTimeoutOnly,omitempty"`
	// Nodes is the number of fake Nodes; 0 chooses from N.
	Nodes       int              `json:"nodes"`
	Controllers []controllerSpec `json:"controllers"`
	Dir         string           `json:"dir"`
	JSON        string           `json:"-"`
	Log         io.Writer        `json:"-"`
}

// rollouts is M, or N/10 (at least 1) when unset.
func (c config) rollouts() int {
	if c.M > 0 {
		return min(c.M, c.N)
	}
	return max(1, c.N/10)
}

// nodes is enough fake Nodes (1000 Pods each) for the targets', the
// primaries' and the releases' Pods.
func (c config) nodes() int {
	if c.Nodes > 0 {
		return c.Nodes
	}
	return 1 + 2*c.N/800
}

// controllerManagerFlags set kube-controller-manager's client limits. Its
// default (20 requests per second) makes it, not the scheduler or KWOK,
// the bound of every Deployment rollout, and keeps it busy for many
// minutes with the noise's ReplicaSets.
func (c config) controllerManagerFlags() []string {
	if c.KCMQPS <= 0 {
		return nil
	}
	return []string{fmt.Sprintf("--kube-api-qps=%d", c.KCMQPS), fmt.Sprintf("--kube-api-burst=%d", 2*c.KCMQPS)}
}

// The phases' time limits grow with N; they only keep a stuck run from
// running for ever.
func (c config) bedTimeout() time.Duration { return 3*time.Minute + time.Duration(c.N)*time.Second }
func (c config) initTimeout() time.Duration {
	return c.capped(5*time.Minute + time.Duration(c.N)*2*time.Second)
}
func (c config) rolloutTimeout() time.Duration {
	// Flagger v1.44.0 takes about 15 minutes for 100 releases of 30 s.
	d := 5*time.Minute + 4*time.Duration(c.Iterations)*c.Interval + time.Duration(c.rollouts())*12*time.Second
	if c.SlowHooks {
		d += time.Duration(c.Iterations+2) * (c.SlowDelay + c.Interval)
	}
	return c.capped(d)
}

// forController is the configuration for the controller of label: without
// -phase-timeout when -phase-timeout-only names another one.
func (c config) forController(label string) config {
	if c.PhaseTimeoutOnly != "" && c.PhaseTimeoutOnly != label {
		c.PhaseTimeout = 0
	}
	return c
}

// capped is d, or -phase-timeout when that is set and shorter.
func (c config) capped(d time.Duration) time.Duration {
	if c.PhaseTimeout > 0 {
		return min(d, c.PhaseTimeout)
	}
	return d
}

// controllerList collects repeated -controller-cmd flags.
type controllerList []controllerSpec

func (l *controllerList) String() string { return fmt.Sprint(*l) }
func (l *controllerList) Set(s string) error {
	spec, err := parseControllerSpec(s)
	if err != nil {
		return err
	}
	*l = append(*l, spec)
	return nil
}

// commonFlags are how the benchmark starts Sluice and Flagger: Flagger's
// flags, which Sluice takes too.
const commonFlags = " -kubeconfig {kubeconfig} -mesh-provider kubernetes -metrics-server {metrics} -namespace {namespace} -port {port} -log-level info"

func main() {
	ctrl.SetLogger(logr.Discard())
	cfg, err := parseFlags(os.Args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ok, err := benchmark(ctx, cfg, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-scale:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

// parseFlags reads the command line.
func parseFlags(args []string) (config, error) {
	cfg := config{Log: os.Stderr}
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	fs.IntVar(&cfg.N, "n", 100, "Number of Canaries (and of unrelated Deployments, ConfigMaps and Secrets).")
	fs.IntVar(&cfg.M, "m", 0, "Number of simultaneous releases in phases 3 and 4; 0 means N/10.")
	fs.IntVar(&cfg.Noise, "noise", 0, "Additional unrelated Deployments (0 replicas), ConfigMaps and Secrets, each, created after phase 4 (phase 5), which then measures the idle controller again.")
	fs.DurationVar(&cfg.Interval, "interval", 10*time.Second, "Analysis interval of every Canary.")
	fs.IntVar(&cfg.Iterations, "iterations", 3, "Analysis iterations of every Canary.")
	fs.IntVar(&cfg.Threshold, "threshold", 2, "Failed checks before a rollback.")
	fs.DurationVar(&cfg.Settle, "settle", 10*time.Second, "Wait after phase 1 before measuring the idle controller.")
	fs.DurationVar(&cfg.Idle, "idle", time.Minute, "Length of the idle measurement (phase 2).")
	fs.BoolVar(&cfg.SlowHooks, "slow-hooks", false, "Give every tenth Canary a rollout webhook that answers after -slow-delay; lateness is reported apart for them.")
	fs.DurationVar(&cfg.SlowDelay, "slow-delay", 30*time.Second, "How long the slow webhook takes to answer.")
	fs.BoolVar(&cfg.Pprof, "pprof", false, "Save the controller's heap profiles after phases 1, 2 and 3, and a CPU profile and goroutine dump during phase 3, from /debug/pprof on its -port.")
	fs.IntVar(&cfg.KCMQPS, "kcm-qps", 300, "kube-controller-manager's client QPS (burst twice that); 0 keeps its default of 20, which bounds the bed to about 4 Pods ready per second.")
	fs.DurationVar(&cfg.PhaseTimeout, "phase-timeout", 0, "Cap on phases 1, 3 and 4, after which a phase reports how many Canaries it got through (\"unfinished: k of M after X\") and the next one starts; 0 means limits that grow with N, whose end is a failure.")
	fs.StringVar(&cfg.PhaseTimeoutOnly, "phase-timeout-only", "", "Apply -phase-timeout only to the controller of this label (e.g. flagger).")
	fs.IntVar(&cfg.Nodes, "nodes", 0, "Number of fake Nodes; 0 chooses from N.")
	var controllers controllerList
	fs.Var(&controllers, "controller-cmd", "Controller to measure, repeatable: \"[label: ]command\" with the placeholders "+placeholders+
		"; default: the Sluice binary of -sluice with Flagger's flags.")
	sluice := fs.String("sluice", "bin/sluice", "Sluice binary for the default controller and -compare.")
	flagger := fs.String("flagger", defaultFlagger(), "Flagger v1.44.0 binary for -compare.")
	compare := fs.Bool("compare", false, "Measure Sluice (-sluice) and Flagger (-flagger) side by side, after any -controller-cmd.")
	fs.StringVar(&cfg.Dir, "dir", "", "Directory for the logs (control plane, controller, audit log); empty means a new temporary one, kept.")
	fs.StringVar(&cfg.JSON, "json", "bench-scale.json", "File the results are written to as JSON.")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Controllers = controllers
	if *compare || len(cfg.Controllers) == 0 {
		cfg.Controllers = append(cfg.Controllers, controllerSpec{Label: "sluice", Command: shellQuote(*sluice) + commonFlags})
	}
	if *compare {
		cfg.Controllers = append(cfg.Controllers, controllerSpec{Label: "flagger", Command: shellQuote(*flagger) + commonFlags})
	}
	switch {
	case cfg.N < 1:
		return cfg, errors.New("-n must be at least 1")
	case cfg.Iterations < 1 || cfg.Threshold < 1:
		return cfg, errors.New("-iterations and -threshold must be at least 1")
	case cfg.Interval < time.Second:
		return cfg, errors.New("-interval must be at least 1s")
	}
	return cfg, nil
}

// defaultFlagger is bin/flagger when it exists, else the binary the
// project's tool cache holds.
func defaultFlagger() string {
	if _, err := os.Stat("bin/flagger"); err == nil {
		return "bin/flagger"
	}
	cache := os.Getenv("SLUICE_CACHE")
	if cache == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "flagger"
		}
		cache = filepath.Join(dir, "sluice")
	}
	return filepath.Join(cache, "flagger", "v1.44.0", "flagger")
}

// shellQuote quotes s for the controller command line.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t'\"\\$`") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// benchmark measures every controller in turn, prints the table to out and
// writes the JSON file. It reports false when a check failed.
func benchmark(ctx context.Context, cfg config, out io.Writer) (bool, error) {
	if cfg.Dir == "" {
		dir, err := os.MkdirTemp("", "sluice-bench-scale-")
		if err != nil {
			return false, fmt.Errorf("creating the benchmark directory: %w", err)
		}
		cfg.Dir = dir
	}
	rep := newReport(cfg)
	fmt.Fprintf(cfg.Log, "bench: N=%d M=%d noise=%d on %s; logs in %s\n", cfg.N, cfg.rollouts(), cfg.Noise, rep.Machine, cfg.Dir)
	ok := true
	seen := map[string]int{}
	for _, spec := range cfg.Controllers {
		if seen[spec.Label]++; seen[spec.Label] > 1 {
			spec.Label = fmt.Sprintf("%s-%d", spec.Label, seen[spec.Label])
		}
		res, err := benchController(ctx, cfg.forController(spec.Label), spec, filepath.Join(cfg.Dir, spec.Label))
		if err != nil {
			res.Problems = append(res.Problems, err.Error())
			fmt.Fprintf(cfg.Log, "bench [%s] FAILED: %v\n", spec.Label, err)
		}
		if len(res.Problems) > 0 {
			ok = false
		}
		rep.Results = append(rep.Results, res)
		if ctx.Err() != nil {
			break
		}
	}
	rep.finish()
	rep.print(out)
	if err := rep.write(cfg.JSON); err != nil {
		return false, err
	}
	fmt.Fprintf(cfg.Log, "bench: results in %s, logs in %s\n", cfg.JSON, cfg.Dir)
	return ok, ctx.Err()
}
