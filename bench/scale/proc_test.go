package main

import (
	"os"
	"slices"
	"testing"
	"time"
)

func TestParseControllerSpec(t *testing.T) {
	tests := []struct {
		in    string
		label string
		cmd   string
	}{
		{"bin/sluice -kubeconfig {kubeconfig}", "sluice", "bin/sluice -kubeconfig {kubeconfig}"},
		{"old: /tmp/sluice-old -port {port}", "old", "/tmp/sluice-old -port {port}"},
		{"/opt/flagger/flagger -namespace {namespace}", "flagger", "/opt/flagger/flagger -namespace {namespace}"},
		{"  'my dir/ctl' -x  ", "ctl", "'my dir/ctl' -x"},
	}
	for _, tc := range tests {
		got, err := parseControllerSpec(tc.in)
		if err != nil {
			t.Errorf("parseControllerSpec(%q): %v", tc.in, err)
			continue
		}
		if got.Label != tc.label || got.Command != tc.cmd {
			t.Errorf("parseControllerSpec(%q) = %+v, want label %q, command %q", tc.in, got, tc.label, tc.cmd)
		}
	}
	if _, err := parseControllerSpec("   "); err == nil {
		t.Error("an empty command was accepted")
	}
}

func TestControllerSpec_ArgvSubstitutesThePlaceholders(t *testing.T) {
	spec := controllerSpec{Label: "sluice", Command: `bin/sluice -kubeconfig {kubeconfig} -metrics-server={metrics} -namespace "{namespace}" -port {port} -cluster-name 'a b'`}
	got, err := spec.argv(map[string]string{"kubeconfig": "/tmp/k", "metrics": "http://127.0.0.1:9", "namespace": "bench", "port": "8081"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"bin/sluice", "-kubeconfig", "/tmp/k", "-metrics-server=http://127.0.0.1:9", "-namespace", "bench", "-port", "8081", "-cluster-name", "a b"}
	if !slices.Equal(got, want) {
		t.Errorf("argv = %q, want %q", got, want)
	}
}

func TestReadUsage_ReadsThisProcess(t *testing.T) {
	// Burn some CPU so that the reading cannot be zero by chance.
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x
	}
	u, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.CPU <= 0 || u.RSS <= 0 || u.PeakRSS < u.RSS || u.AnonRSS <= 0 || u.AnonRSS > u.RSS {
		t.Errorf("usage = %+v, want CPU time, an RSS, a peak at least as large and an anonymous part of the RSS", u)
	}
}
