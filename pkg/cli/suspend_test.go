package cli

import (
	"testing"
)

func TestPauseAndResume_SetSpecSuspend(t *testing.T) {
	t.Parallel()
	cd := playedCanary(t, "pause", "progressing-failed-check", nil)
	ns := cd.Namespace
	r := sluice(t, "pause", "podinfo", "-n", ns).ok(t)
	if want := "canary pause/podinfo paused in phase Progressing: Sluice does not act on it until `kubectl sluice resume podinfo -n pause`\n"; r.out != want {
		t.Errorf("pause printed %q, want %q", r.out, want)
	}
	if !readCanary(t, cd).Spec.Suspend {
		t.Fatal("spec.suspend is not set after pause")
	}
	if r := sluice(t, "pause", "podinfo", "-n", ns).ok(t); r.out != "canary pause/podinfo is already paused\n" {
		t.Errorf("a second pause printed %q", r.out)
	}
	if r := sluice(t, "resume", "podinfo", "-n", ns).ok(t); r.out != "canary pause/podinfo resumed in phase Progressing\n" {
		t.Errorf("resume printed %q", r.out)
	}
	if readCanary(t, cd).Spec.Suspend {
		t.Fatal("spec.suspend is still set after resume")
	}
	if r := sluice(t, "resume", "podinfo", "-n", ns).ok(t); r.out != "canary pause/podinfo is already running (not paused)\n" {
		t.Errorf("a second resume printed %q", r.out)
	}
}
