package statemachine

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// Session affinity (analysis.sessionAffinity) pins users to the version
// they first reached during a weighted canary release. The state machine
// only keeps the cookies in the status, as "<name>=<value>"; the routers
// render them (Set-Cookie on the responses of a version, a route that
// sends requests carrying the cookie to that version) from the status they
// are given with each routing action.

// pinUsers hands out the cookies of this analysis, once, when traffic first
// shifts to the canary.
func (d *decider) pinUsers() {
	a := d.in.Spec.Analysis
	if a == nil || a.SessionAffinity == nil || d.p.strategy != CanaryRelease || d.next.SessionAffinityCookie != "" {
		return
	}
	sa := a.SessionAffinity
	d.next.SessionAffinityCookie = sa.CookieName + "=" + d.cookieValue("canary")
	if sa.PrimaryCookieName != "" {
		d.next.PrimarySessionAffinityCookie = sa.PrimaryCookieName + "=" + d.cookieValue("primary")
	}
}

// unpinUsers ends the cookies of a finished or abandoned analysis. The
// canary cookie becomes the previous one, which the routers expire for the
// users who still send it.
func (d *decider) unpinUsers() {
	if c := d.next.SessionAffinityCookie; c != "" {
		d.next.PreviousSessionAffinityCookie = c
	}
	d.next.SessionAffinityCookie, d.next.PrimarySessionAffinityCookie = "", ""
}

// cookieValue is a cookie value unique to this Canary, revision, moment
// and role. It is derived rather than random so that Decide stays a pure
// function; nothing depends on it being secret.
func (d *decider) cookieValue(role string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s/%s/%s/%d/%s", d.in.Namespace, d.in.Name, d.next.LastAppliedSpec, d.in.Now.UnixNano(), role))
	return hex.EncodeToString(sum[:16])
}

// affinityNotice warns, when an analysis starts, that session affinity
// has no effect on its strategy: only a weighted release splits users.
func (d *decider) affinityNotice() {
	a := d.in.Spec.Analysis
	if a == nil || a.SessionAffinity == nil || d.p.strategy == CanaryRelease {
		return
	}
	d.event(Warning, "analysis.sessionAffinity only applies to weighted canary releases: the %s analysis of %s runs without session cookies",
		d.p.strategy, d.in.Spec.TargetRef.Name)
}
