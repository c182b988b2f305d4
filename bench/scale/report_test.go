package main

import (
	"strings"
	"testing"
	"time"
)

func TestConfig_PhaseTimeoutCapsOnlyLongerLimits(t *testing.T) {
	base := config{N: 1000, Interval: 10 * time.Second, Iterations: 3}
	tests := []struct {
		name    string
		timeout time.Duration
		want    time.Duration
	}{
		{"unset keeps the limit that grows with N", 0, 5*time.Minute + 2000*time.Second},
		{"a shorter cap wins", 4 * time.Minute, 4 * time.Minute},
		{"a longer cap changes nothing", 10 * time.Hour, 5*time.Minute + 2000*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := base
			cfg.PhaseTimeout = tt.timeout
			if got := cfg.initTimeout(); got != tt.want {
				t.Errorf("initTimeout() = %s, want %s", got, tt.want)
			}
			if tt.timeout > 0 && cfg.rolloutTimeout() > tt.timeout {
				t.Errorf("rolloutTimeout() = %s, above the cap %s", cfg.rolloutTimeout(), tt.timeout)
			}
		})
	}
}

func TestConfig_PhaseTimeoutOnlyCapsTheNamedController(t *testing.T) {
	cfg := config{N: 3000, PhaseTimeout: 4 * time.Minute, PhaseTimeoutOnly: "flagger"}
	if got := cfg.forController("flagger").initTimeout(); got != 4*time.Minute {
		t.Errorf("flagger's phase 1 limit = %s, want the cap", got)
	}
	if got := cfg.forController("sluice").initTimeout(); got != 5*time.Minute+6000*time.Second {
		t.Errorf("sluice's phase 1 limit = %s, want the one that grows with N", got)
	}
	cfg.PhaseTimeoutOnly = ""
	if got := cfg.forController("sluice").initTimeout(); got != 4*time.Minute {
		t.Errorf("without -phase-timeout-only, sluice's phase 1 limit = %s, want the cap", got)
	}
}

// cell returns the cell of the row whose label starts with prefix.
func cell(t *testing.T, rep *report, prefix string, x *result) string {
	t.Helper()
	for _, rw := range rep.rows() {
		if strings.HasPrefix(rw.label, prefix) {
			return rw.cell(x)
		}
	}
	t.Fatalf("no row %q", prefix)
	return ""
}

func TestReport_UnfinishedPhasesSayHowFarTheyGot(t *testing.T) {
	rep := &report{Config: config{N: 1000, Noise: 10000}}
	x := &result{
		Init:    initResult{Canaries: 1000, Initialized: 640, Seconds: 240},
		Rollout: rolloutResult{Rollouts: 100, Succeeded: 30, Unfinished: 70, AllDoneSeconds: 200, PhaseSeconds: 240},
		Noise:   noiseResult{Objects: 10000, Idle: idleResult{RSSMiB: 91.5, AnonRSSMiB: 40.2}},
	}
	checks := map[string]string{
		"1 all 1000 Initialized": "unfinished: 640 of 1000 after 240.0 s",
		"3 all ended":            "unfinished: 30 of 100 after 240.0 s",
		"5 idle RSS":             "91.5 MiB (40.2 MiB)",
	}
	for prefix, want := range checks {
		if got := cell(t, rep, prefix, x); got != want {
			t.Errorf("%s: %q, want %q", prefix, got, want)
		}
	}
	x.Init.Initialized, x.Init.VsBed = 1000, 2.5
	if got := cell(t, rep, "1 all 1000 Initialized", x); got != "240.0 s (2.50x)" {
		t.Errorf("finished phase 1: %q", got)
	}
}
