//go:build e2e

package scenarios

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/utils/ptr"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/e2e/meshsim"
)

// TestIstio_SessionAffinityKeepsUsersOnTheirVersion: with
// analysis.sessionAffinity, a user whom the canary answered once gets the
// canary's cookie and stays on the canary, while users without it are
// still split by weight; after the promotion the primary answers the old
// cookie and expires it.
func TestIstio_SessionAffinityKeepsUsersOnTheirVersion(t *testing.T) {
	t.Parallel()
	s := newScenario(t, true)
	s.initialize(canaryFor(flaggerv1beta1.ProviderIstio, &flaggerv1beta1.CanaryAnalysis{
		StepWeight: ptr.To[int32](20), MaxWeight: ptr.To[int32](40),
		SessionAffinity: &flaggerv1beta1.SessionAffinity{CookieName: "canary-user", MaxAge: 600},
		Metrics:         meshChecks(),
		Webhooks: []flaggerv1beta1.CanaryWebhook{
			s.loadTest(""),
			// The closed gate holds the split at the maximum weight for as
			// long as the requests below take, however slow the machine.
			{Name: "confirm", Type: flaggerv1beta1.ConfirmPromotionHook, URL: s.loadTester + "/gate/check"},
		},
	}))

	s.release("6.1.0", 0)
	s.waitPhase(flaggerv1beta1.CanaryPhaseWaitingPromotion, 3*time.Minute, nil)
	cd, err := s.canary()
	if err != nil {
		t.Fatal(err)
	}
	cookie, weight := cd.Status.SessionAffinityCookie, cd.Status.CanaryWeight
	if weight == 0 || !strings.HasPrefix(cookie, "canary-user=") {
		t.Fatalf("while waiting for promotion: canary weight %d and session cookie %q, want a weight and canary-user=<value>", weight, cookie)
	}
	s.eventually(30*time.Second, "the simulated mesh routing the cookie", func() (bool, error) {
		r := s.sim.Routes()
		return r.Matches == 1 && r.Canary == int(weight), nil
	})
	s.logf("canary weight %d, session cookie %s", weight, cookie)

	var first answer
	s.eventually(time.Minute, "an answer from the canary to a request without a cookie", func() (bool, error) {
		as, err := s.ask(1, "")
		if err == nil {
			first = as[0]
		}
		return first.version == "canary", err
	})
	if len(first.setCookie) != 1 || !strings.HasPrefix(first.setCookie[0], cookie+";") || !strings.Contains(first.setCookie[0], "Max-Age=600") {
		t.Errorf("the canary's first answer sets cookies %q, want one starting %q with Max-Age=600", first.setCookie, cookie+";")
	}

	pinned, err := s.ask(20, cookie)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(pinned, "canary"); n != len(pinned) {
		t.Errorf("with cookie %s: %d of %d answers from the canary, want all: %v", cookie, n, len(pinned), pinned)
	}
	split, err := s.ask(20, "")
	if err != nil {
		t.Fatal(err)
	}
	if count(split, "primary") == 0 {
		t.Errorf("without a cookie: no answer from the primary, want the %d/%d split: %v", 100-weight, weight, split)
	}
	s.logf("with the cookie: %d of %d answers from the canary; without: %d of %d", count(pinned, "canary"), len(pinned), count(split, "canary"), len(split))
	for _, a := range split {
		if sets := len(a.setCookie) == 1 && strings.HasPrefix(a.setCookie[0], cookie+";"); sets != (a.version == "canary") {
			t.Errorf("without a cookie: the %s answered setting cookies %q, want the canary's cookie from the canary only", a.version, a.setCookie)
			break
		}
	}

	s.openGate()
	s.logf("opened the gate")
	s.waitPhase(flaggerv1beta1.CanaryPhaseSucceeded, 2*time.Minute, nil)
	if got := s.primaryImage(); got != image+"6.1.0" {
		t.Errorf("primary image = %s, want %s6.1.0", got, image)
	}
	s.expectAllTrafficToPrimary()
	s.eventually(30*time.Second, "the simulated mesh routing the expired cookie", func() (bool, error) {
		cd, err := s.canary()
		if err != nil {
			return false, err
		}
		if prev := cd.Status.PreviousSessionAffinityCookie; prev != cookie {
			return false, fmt.Errorf("previousSessionAffinityCookie is %q, want %q", prev, cookie)
		}
		return s.sim.Routes() == meshsim.Routes{Primary: 100, Matches: 1, Found: true}, nil
	})
	expired, err := s.ask(5, cookie)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range expired {
		if a.version != "primary" || len(a.setCookie) != 1 || !strings.HasPrefix(a.setCookie[0], cookie+"; Max-Age=-1") {
			t.Errorf("after the promotion, with cookie %s: %v, want the primary expiring it (Set-Cookie: %s; Max-Age=-1)", cookie, a, cookie)
			break
		}
	}
}

// answer is how the simulated mesh answered one request.
type answer struct {
	version   string
	code      int
	setCookie []string
}

// String says who answered, with what, for messages.
func (a answer) String() string {
	return fmt.Sprintf("%s %d Set-Cookie %q", a.version, a.code, a.setCookie)
}

// ask sends n requests through the simulated mesh's front proxy, one
// after the other, with a Cookie header when cookie is not empty.
func (s *scenario) ask(n int, cookie string) ([]answer, error) {
	out := make([]answer, 0, n)
	for range n {
		req, err := http.NewRequestWithContext(s.t.Context(), http.MethodGet, s.sim.ProxyURL+"/", nil)
		if err != nil {
			return nil, err
		}
		if cookie != "" {
			req.Header.Set("Cookie", cookie)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("asking the simulated mesh: %w", err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		out = append(out, answer{version: resp.Header.Get(meshsim.HeaderVersion), code: resp.StatusCode, setCookie: resp.Header.Values("Set-Cookie")})
	}
	return out, nil
}

// count is how many answers came from version.
func count(as []answer, version string) int {
	n := 0
	for _, a := range as {
		if a.version == version {
			n++
		}
	}
	return n
}
