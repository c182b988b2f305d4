package router

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// This file holds what the routers that split traffic by weight share:
// checking a split, the A/B request conditions and reading a split back.

// checkSplit rejects a split that does not send all traffic somewhere, and
// one with a baseline share: the routers that route to a baseline check
// their splits with checkShares.
func checkSplit(cd *flaggerv1beta1.Canary, r Routes) error {
	if r.Baseline != 0 {
		return fmt.Errorf("canary %s/%s: this provider cannot send traffic to a baseline (analysis.baseline), and the split gives it %d%%",
			cd.Namespace, cd.Name, r.Baseline)
	}
	return checkShares(cd, r)
}

// describeSplit says where a split sends the traffic, for messages.
func describeSplit(r Routes) string {
	out := fmt.Sprintf("primary %d%%, canary %d%%", r.Primary, r.Canary)
	if r.Baseline != 0 {
		out += fmt.Sprintf(", baseline %d%%", r.Baseline)
	}
	return out + fmt.Sprintf(" (mirrored: %t)", r.Mirrored)
}

// checkShares rejects a split that does not send all traffic somewhere.
func checkShares(cd *flaggerv1beta1.Canary, r Routes) error {
	if r.Baseline != 0 {
		if r.Primary < 0 || r.Canary < 0 || r.Baseline < 0 || r.Primary+r.Canary+r.Baseline != 100 {
			return fmt.Errorf("canary %s/%s: the primary, canary and baseline weights must be between 0 and 100 and add up to 100, not %d, %d and %d",
				cd.Namespace, cd.Name, r.Primary, r.Canary, r.Baseline)
		}
		return nil
	}
	if r.Primary < 0 || r.Canary < 0 || r.Primary+r.Canary != 100 {
		return fmt.Errorf("canary %s/%s: the primary and canary weights must be between 0 and 100 and add up to 100, not %d and %d",
			cd.Namespace, cd.Name, r.Primary, r.Canary)
	}
	return nil
}

// abTesting reports whether the Canary runs an A/B test, as the engine
// decides it: analysis.match with iterations. Its match routes then carry
// the split, and the default route sends everything else to the primary.
// Each A/B route requires the conditions of one analysis.match entry on
// top of those of spec.service.match (an A/B condition replaces a service
// condition on the same name), so that it is never wider than the default
// route.
func abTesting(cd *flaggerv1beta1.Canary) bool {
	a := cd.Spec.Analysis
	return a != nil && len(a.Match) > 0 && a.Iterations != nil && *a.Iterations > 0
}

// mergeMaps adds the entries of extra to base, which it returns, making
// base when it is nil and extra is not empty.
func mergeMaps[V any](base, extra map[string]V) map[string]V {
	if len(extra) == 0 {
		return base
	}
	if base == nil {
		base = make(map[string]V, len(extra))
	}
	maps.Copy(base, extra)
	return base
}

// headerMatches returns the A/B header conditions as StringMatches.
func headerMatches(h map[string]flaggerv1beta1.HeaderMatch) map[string]flaggerv1beta1.StringMatch {
	out := make(map[string]flaggerv1beta1.StringMatch, len(h))
	for k, v := range h {
		out[k] = flaggerv1beta1.StringMatch(v)
	}
	return out
}

// weightedBackend is a destination of a route and its weight, as read
// from a routing object.
type weightedBackend struct {
	name   string
	weight int
}

// splitOf adds up the weights of the primary's and the canary's backends.
// Other backends are left out, so that a route someone pointed elsewhere
// reads as a split that does not add up to 100.
func splitOf(backends []weightedBackend, primary, canary string, mirrored bool) Routes {
	return splitWithBaseline(backends, primary, canary, "", mirrored)
}

// splitWithBaseline is splitOf for the routers that also route to a
// baseline, whose backend is named baseline.
func splitWithBaseline(backends []weightedBackend, primary, canary, baseline string, mirrored bool) Routes {
	r := Routes{Mirrored: mirrored}
	for _, b := range backends {
		switch {
		case b.name == primary:
			r.Primary += b.weight
		case b.name == canary:
			r.Canary += b.weight
		case baseline != "" && b.name == baseline:
			r.Baseline += b.weight
		}
	}
	return r
}

// sortedKeys returns the keys of m in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// fieldErrors collects the problems a conversion finds instead of stopping
// at the first, so that one error names every field to fix.
type fieldErrors struct {
	errs []error
}

// fail records a problem with a field of the Canary.
func (f *fieldErrors) fail(field string, err error) {
	f.errs = append(f.errs, fmt.Errorf("%s: %w", field, err))
}

// Err returns the problems found so far, joined, or nil. A problem found
// twice (a field converted for several routes) is reported once.
func (f *fieldErrors) Err() error {
	var out []error
	seen := make(map[string]bool, len(f.errs))
	for _, err := range f.errs {
		if !seen[err.Error()] {
			seen[err.Error()] = true
			out = append(out, err)
		}
	}
	return errors.Join(out...)
}

// ensureSplit creates or updates a routing object that carries the split,
// with Ensure. read returns the split obj holds; write renders the spec
// and metadata for a split onto obj. The split written is routes or, when
// routes is nil, the one the live object holds if it can be read and adds
// up to 100, else all traffic to the primary. So Reconcile restores the
// rest of the spec and keeps the split, which the engine corrects with
// SetRoutes.
func ensureSplit(ctx context.Context, c client.Client, cd *flaggerv1beta1.Canary, obj client.Object, routes *Routes,
	read func() (Routes, error), write func(Routes) error) error {
	_, err := Ensure(ctx, c, cd, obj, func() error {
		want := Routes{Primary: 100}
		switch {
		case routes != nil:
			want = *routes
		case obj.GetUID() != "":
			if live, err := read(); err == nil && checkShares(cd, live) == nil {
				want = live
			}
		}
		return write(want)
	})
	return err
}
