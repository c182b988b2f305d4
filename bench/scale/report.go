package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is the JSON file: the settings, the machine and each controller's
// results.
type report struct {
	Date    time.Time `json:"date"`
	Machine machine   `json:"machine"`
	Config  config    `json:"config"`
	Results []*result `json:"results"`
}

// machine describes where the benchmark ran: the figures mean little
// without it.
type machine struct {
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	GoVersion string `json:"goVersion"`
	// LoadStart and LoadEnd are /proc/loadavg's 1, 5 and 15 minute loads.
	LoadStart string `json:"loadStart"`
	LoadEnd   string `json:"loadEnd"`
}

func (m machine) String() string {
	return fmt.Sprintf("%s/%s, %d CPUs (%s), load %s", m.OS, m.Arch, m.CPUs, m.CPUModel, m.LoadStart)
}

func newReport(cfg config) *report {
	return &report{
		Date:   time.Now().UTC().Truncate(time.Second),
		Config: cfg,
		Machine: machine{OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(), CPUModel: cpuModel(),
			GoVersion: runtime.Version(), LoadStart: loadAvg()},
	}
}

// finish records the load at the end.
func (r *report) finish() { r.Machine.LoadEnd = loadAvg() }

// cpuModel is /proc/cpuinfo's first model name.
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// write writes the report as indented JSON to path.
func (r *report) write(path string) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the results: %w", err)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing the results: %w", err)
	}
	return nil
}

// row is one line of the table: a label and a cell per controller.
type row struct {
	label string
	cell  func(*result) string
}

// rows are the table's lines, in phase order.
func (r *report) rows() []row {
	cfg := r.Config
	m := cfg.rollouts()
	rows := []row{
		{fmt.Sprintf("0 bed: %d Deployments ready", cfg.N), func(x *result) string { return secs(x.Bed.ReadySeconds) }},
		{fmt.Sprintf("0 bed: %d Deployments rolled (each p50)", m), func(x *result) string {
			return fmt.Sprintf("%s (%s)", secs(x.Bed.RollSeconds), secs(x.Bed.PerRoll.P50))
		}},
		{fmt.Sprintf("0 bed: %d Services created", 3*cfg.rollouts()), func(x *result) string {
			if x.Bed.Services == 0 {
				return "-"
			}
			return fmt.Sprintf("%s (%.0f per second)", secs(x.Bed.ServiceSeconds), float64(x.Bed.Services)/x.Bed.ServiceSeconds)
		}},
		{"1 controller ready", func(x *result) string { return secs(x.Init.StartSeconds) }},
		{fmt.Sprintf("1 all %d Initialized (vs bed)", cfg.N), func(x *result) string {
			if x.Init.Initialized < x.Init.Canaries {
				return fmt.Sprintf("unfinished: %d of %d after %s", x.Init.Initialized, x.Init.Canaries, secs(x.Init.Seconds))
			}
			return fmt.Sprintf("%s (%.2fx)", secs(x.Init.Seconds), x.Init.VsBed)
		}},
		{fmt.Sprintf("1 floor: %d Services at the bed's rate (vs floor)", 3*cfg.N), func(x *result) string {
			if x.Init.ServicesFloorSeconds == 0 || x.Init.Initialized < x.Init.Canaries {
				return "-"
			}
			return fmt.Sprintf("%s (%.2fx)", secs(x.Init.ServicesFloorSeconds), x.Init.VsFloor)
		}},
		{"1 RSS after phase 1 (anonymous)", func(x *result) string { return rss(x.Init.RSSMiB, x.Init.AnonRSSMiB) }},
		{"2 idle requests/min (writes/min)", func(x *result) string {
			return fmt.Sprintf("%.1f (%.1f)", x.Idle.RequestsPerMinute, x.Idle.WritesPerMinute)
		}},
		{"2 idle CPU s/min", func(x *result) string { return fmt.Sprintf("%.2f", x.Idle.CPUSecondsPerMinute) }},
		{"2 idle RSS (anonymous)", func(x *result) string { return rss(x.Idle.RSSMiB, x.Idle.AnonRSSMiB) }},
	}
	rows = append(rows, rolloutRows("3", fmt.Sprintf("%d releases", m), func(x *result) *rolloutResult { return &x.Rollout })...)
	rows = append(rows, rolloutRows("4", fmt.Sprintf("%d releases, %d failing", m, len(failingOf(make([]string, m)))),
		func(x *result) *rolloutResult { return &x.Failing })...)
	if cfg.Noise > 0 {
		rows = append(rows,
			row{fmt.Sprintf("5 +%d unrelated each: idle requests/min (writes/min)", cfg.Noise), func(x *result) string {
				return fmt.Sprintf("%.1f (%.1f)", x.Noise.Idle.RequestsPerMinute, x.Noise.Idle.WritesPerMinute)
			}},
			row{"5 idle CPU s/min", func(x *result) string { return fmt.Sprintf("%.2f", x.Noise.Idle.CPUSecondsPerMinute) }},
			row{"5 idle RSS (anonymous)", func(x *result) string { return rss(x.Noise.Idle.RSSMiB, x.Noise.Idle.AnonRSSMiB) }},
		)
	}
	rows = append(rows,
		row{"peak RSS", func(x *result) string { return fmt.Sprintf("%.1f MiB", x.PeakRSSMiB) }},
		row{"checks", func(x *result) string {
			if len(x.Problems) == 0 {
				return "ok"
			}
			return fmt.Sprintf("%d problems", len(x.Problems))
		}},
	)
	return rows
}

// rolloutRows are the lines of phase 3 or 4.
func rolloutRows(phase, what string, get func(*result) *rolloutResult) []row {
	rows := []row{
		{phase + " " + what + ": Succeeded/Failed/unfinished", func(x *result) string {
			g := get(x)
			return fmt.Sprintf("%d/%d/%d", g.Succeeded, g.Failed, g.Unfinished)
		}},
		{phase + " all ended", func(x *result) string {
			g := get(x)
			if g.Unfinished > 0 {
				return fmt.Sprintf("unfinished: %d of %d after %s", g.Rollouts-g.Unfinished, g.Rollouts, secs(g.PhaseSeconds))
			}
			return secs(g.AllDoneSeconds)
		}},
		{phase + " release p50/max (nominal, allowance)", func(x *result) string {
			g := get(x)
			return fmt.Sprintf("%.1f/%.1f s (%.0f, %.0f)", g.RolloutSeconds.P50, g.RolloutSeconds.Max, g.NominalSeconds, g.AllowanceSeconds)
		}},
		{phase + " release beyond nominal and its Pods p50/max (Pods p50)", func(x *result) string {
			g := get(x)
			if g.BeyondSeconds.Count == 0 {
				return "-"
			}
			return fmt.Sprintf("%.1f/%.1f s (%.1f s)", g.BeyondSeconds.P50, g.BeyondSeconds.Max, g.PodSeconds.P50)
		}},
		{phase + " step lateness p50/p99/max (early steps)", func(x *result) string {
			return fmt.Sprintf("%s (%d)", lateness(get(x).Lateness), get(x).EarlySteps)
		}},
		{phase + " step lateness, slow-webhook Canaries", func(x *result) string { return lateness(get(x).LatenessSlow) }},
		{phase + " per release: GETs/writes/events", func(x *result) string {
			g := get(x)
			return fmt.Sprintf("%.1f/%.1f/%.1f", g.GetsPerRollout, g.WritesPerRollout, g.EventsPerRollout)
		}},
		{phase + " writes per status change", func(x *result) string { return fmt.Sprintf("%.2f", get(x).WritesPerChange) }},
		{phase + " controller CPU", func(x *result) string { return secs(get(x).CPUSeconds) }},
		{phase + " reconciles: queued >1s, mean wait/work", func(x *result) string {
			q := get(x).Queue
			if !q.Available {
				return "-"
			}
			return fmt.Sprintf("%d of %d, %.3f/%.3f s", q.QueuedOver1s, q.Reconciles, q.QueueMeanSeconds, q.WorkMeanSeconds)
		}},
	}
	return rows
}

func secs(s float64) string { return fmt.Sprintf("%.1f s", s) }

func rss(all, anon float64) string { return fmt.Sprintf("%.1f MiB (%.1f MiB)", all, anon) }

func lateness(s summary) string {
	if s.Count == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f/%.2f/%.2f s", s.P50, s.P99, s.Max)
}

// print writes the table and, per controller, the requests behind it.
func (r *report) print(out io.Writer) {
	cfg := r.Config
	fmt.Fprintf(out, "\nScale benchmark, %s: N=%d Canaries (kubernetes provider, interval %s, %d iterations), M=%d releases, noise %d, slow hooks %t\n",
		r.Date.Format("2006-01-02 15:04 UTC"), cfg.N, cfg.Interval, cfg.Iterations, cfg.rollouts(), cfg.Noise, cfg.SlowHooks)
	fmt.Fprintf(out, "machine: %s; load at end %s\n\n", r.Machine, r.Machine.LoadEnd)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	header := []string{"phase"}
	for _, x := range r.Results {
		header = append(header, x.Controller.Label)
	}
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, rw := range r.rows() {
		if strings.Contains(rw.label, "slow-webhook") && !cfg.SlowHooks {
			continue
		}
		cells := []string{rw.label}
		for _, x := range r.Results {
			cells = append(cells, rw.cell(x))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	_ = tw.Flush()
	for _, x := range r.Results {
		fmt.Fprintf(out, "\n%s (%s):\n", x.Controller.Label, strings.Join(x.Argv, " "))
		fmt.Fprintf(out, "  idle, per minute, by verb: %s\n", formatRates(x.Idle.ByVerb))
		fmt.Fprintf(out, "  idle, per minute, by resource: %s\n", formatRates(x.Idle.ByResource))
		fmt.Fprintf(out, "  phase 1, requests (%d errors): %s\n", x.Init.Requests.Errors, formatCounts(x.Init.Requests.ByVerbResource, 1))
		fmt.Fprintf(out, "  phase 3, per release: %s\n", formatCounts(x.Rollout.Attributed.ByVerbResource, x.Rollout.Rollouts))
		fmt.Fprintf(out, "  phase 3, all requests during the phase (%d errors): %s\n", x.Rollout.Requests.Errors, formatCounts(x.Rollout.Requests.ByVerbResource, 1))
		fmt.Fprintf(out, "  phase 4, per release: %s\n", formatCounts(x.Failing.Attributed.ByVerbResource, x.Failing.Rollouts))
		for _, p := range x.Profiles {
			fmt.Fprintf(out, "  profile: %s\n", p)
		}
		for _, p := range x.Problems {
			fmt.Fprintf(out, "  PROBLEM: %s\n", p)
		}
		fmt.Fprintf(out, "  logs: %s\n", x.Dir)
	}
}

// formatRates lists rates by key, largest first.
func formatRates(m map[string]float64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if m[a] != m[b] {
			if m[a] > m[b] {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %.1f", k, m[k])
	}
	return strings.Join(parts, ", ")
}

// formatCounts lists counts divided by per, largest first.
func formatCounts(m map[string]int, per int) string {
	rates := make(map[string]float64, len(m))
	for k, v := range m {
		rates[k] = float64(v) / float64(max(per, 1))
	}
	return formatRates(rates)
}
