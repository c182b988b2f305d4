package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// readyzTimeout bounds how long one /readyz request waits for the caches.
const readyzTimeout = time.Second

// addProbes serves /healthz and /readyz on the metrics server, so that they
// share -port with /metrics as in Flagger, whose probes hit :8080/healthz.
//
// /readyz fails until the Canary informer has synced. The informer is
// created here, before the manager starts, so that it syncs on every replica
// (a standby is ready to take over) and so that a missing Canary CRD stops
// the start-up with a clear error.
func addProbes(ctx context.Context, mgr ctrl.Manager) error {
	if _, err := mgr.GetCache().GetInformer(ctx, &flaggerv1beta1.Canary{}); err != nil {
		return fmt.Errorf("watching Canaries (is the canaries.flagger.app CRD installed?): %w", err)
	}
	handlers := map[string]http.Handler{
		"/healthz": &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}},
		"/readyz":  &healthz.Handler{Checks: map[string]healthz.Checker{"informers": cacheSynced(mgr.GetCache())}},
	}
	for path, h := range handlers {
		// "/readyz" answers for all checks, "/readyz/informers" for one.
		for _, p := range []string{path, path + "/"} {
			if err := mgr.AddMetricsServerExtraHandler(p, http.StripPrefix(path, h)); err != nil {
				return fmt.Errorf("serving %s: %w", p, err)
			}
		}
	}
	return nil
}

// cacheSynced checks that c has started and its informers have synced.
func cacheSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), readyzTimeout)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("informer caches have not synced yet")
		}
		return nil
	}
}
