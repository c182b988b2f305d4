package statemachine

import (
	"regexp"
	"strings"
	"testing"
	"time"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

func withAffinity(primaryCookie string) func(*flaggerv1beta1.CanarySpec) {
	return func(s *flaggerv1beta1.CanarySpec) {
		s.Analysis.SessionAffinity = &flaggerv1beta1.SessionAffinity{CookieName: "canary-user", PrimaryCookieName: primaryCookie, MaxAge: 600}
	}
}

func withCookies(canary, primary, previous string) func(*flaggerv1beta1.CanaryStatus) {
	return func(s *flaggerv1beta1.CanaryStatus) {
		s.SessionAffinityCookie, s.PrimarySessionAffinityCookie, s.PreviousSessionAffinityCookie = canary, primary, previous
	}
}

func TestDecide_SessionCookies(t *testing.T) {
	cookie := func(name string) *regexp.Regexp { return regexp.MustCompile(`^` + name + `=[0-9a-f]{32}$`) }
	var (
		none    = regexp.MustCompile(`^$`)
		pinned  = regexp.MustCompile(`^canary-user=old$`)
		primary = regexp.MustCompile(`^primary-user=old$`)
	)
	step := func(in Input) Input { in.Results = passed("request-success-rate"); return in }
	tests := []struct {
		name                      string
		in                        Input
		canary, primary, previous *regexp.Regexp
		event                     string
	}{
		{"the first weight step hands out the canary cookie",
			step(input(canarySpec(withAffinity("")), progressing(0, 0), obs("rev2"))),
			cookie("canary-user"), none, none, ""},
		{"with primaryCookieName the primary gets its own cookie too",
			step(input(canarySpec(withAffinity("primary-user")), progressing(0, 0), obs("rev2"))),
			cookie("canary-user"), cookie("primary-user"), none, ""},
		{"later steps keep the cookies of the analysis",
			step(input(canarySpec(withAffinity("primary-user")), progressing(20, 1, withCookies("canary-user=old", "primary-user=old", "")), obs("rev2"))),
			pinned, primary, none, ""},
		{"a rollback turns the canary cookie into the previous one",
			func() Input {
				in := input(canarySpec(withAffinity("primary-user")), progressing(20, 1, withCookies("canary-user=old", "primary-user=old", ""),
					func(s *flaggerv1beta1.CanaryStatus) { s.FailedChecks = 1 }), obs("rev2"))
				in.Results = failing("request-success-rate", "87 < 99")
				return in
			}(),
			none, none, pinned, "Rolling back"},
		{"the end of a promotion turns the canary cookie into the previous one",
			input(canarySpec(withAffinity("")), progressing(40, 2, withCookies("canary-user=old", "", "canary-user=older"),
				func(s *flaggerv1beta1.CanaryStatus) {
					s.Phase, s.CanaryWeight, s.LastTransitionTime = flaggerv1beta1.CanaryPhaseFinalising, 0, *ago(time.Minute)
				}), promoted(obs("rev2"))),
			none, none, pinned, "Promotion completed"},
		{"a new revision during the analysis restarts it without cookies",
			input(canarySpec(withAffinity("")), progressing(20, 1, withCookies("canary-user=old", "", "")), obs("rev3")),
			none, none, pinned, "Restarting the analysis"},
		{"the previous cookie stays until the next analysis hands out a new one",
			step(input(canarySpec(withAffinity("")), progressing(0, 0, withCookies("", "", "canary-user=old")), obs("rev2"))),
			cookie("canary-user"), none, pinned, ""},
		{"a blue/green analysis hands out no cookie and says so when it starts",
			input(canarySpec(withAffinity(""), blueGreen(3)), idle(flaggerv1beta1.CanaryPhaseSucceeded), obs("rev2")),
			none, none, none, "only applies to weighted canary releases"},
		{"a canary without session affinity has no cookies",
			step(input(canarySpec(), progressing(0, 0), obs("rev2"))),
			none, none, none, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.in)
			s := d.Status
			for _, c := range []struct {
				field string
				got   string
				want  *regexp.Regexp
			}{
				{"sessionAffinityCookie", s.SessionAffinityCookie, tt.canary},
				{"primarySessionAffinityCookie", s.PrimarySessionAffinityCookie, tt.primary},
				{"previousSessionAffinityCookie", s.PreviousSessionAffinityCookie, tt.previous},
			} {
				if !c.want.MatchString(c.got) {
					t.Errorf("%s = %q, want it to match %s", c.field, c.got, c.want)
				}
			}
			if tt.event != "" && !hasEvent(d, tt.event) {
				t.Errorf("no event contains %q: %+v", tt.event, d.Events)
			}
		})
	}
}

func TestDecide_SessionCookiesDifferPerAnalysis(t *testing.T) {
	spec := canarySpec(withAffinity("primary-user"))
	in := input(spec, progressing(0, 0), obs("rev2"))
	in.Results = passed("request-success-rate")
	first := Decide(in).Status
	in.Now = in.Now.Add(time.Hour)
	in.Status.LastAppliedSpec = "rev3"
	in.Obs.Revision = "rev3"
	second := Decide(in).Status
	if first.SessionAffinityCookie == second.SessionAffinityCookie {
		t.Errorf("two analyses got the same cookie %q", first.SessionAffinityCookie)
	}
	if strings.TrimPrefix(first.SessionAffinityCookie, "canary-user=") == strings.TrimPrefix(first.PrimarySessionAffinityCookie, "primary-user=") {
		t.Errorf("the canary and primary cookies share a value: %q, %q", first.SessionAffinityCookie, first.PrimarySessionAffinityCookie)
	}
}

func hasEvent(d Decision, substr string) bool {
	for _, e := range d.Events {
		if strings.Contains(e.Message, substr) {
			return true
		}
	}
	return false
}
