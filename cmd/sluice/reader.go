package main

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// cacheFirstReader reads Canaries, MetricTemplates and AlertProviders
// from the manager's cache and everything else (Secrets, above all) from
// the API server. These three are small, few, and read at every
// initialisation and analysis step; reading them from the API server cost
// about two GETs per Canary initialised. When the cache cannot answer (an
// object in another namespace than -namespace, or one not created yet),
// the read goes to the API server.
type cacheFirstReader struct {
	cache client.Reader
	live  client.Reader
}

// Get reads obj from the cache when its kind is cached, else or on any
// error from the API server.
func (r cacheFirstReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	switch obj.(type) {
	case *flaggerv1beta1.Canary, *flaggerv1beta1.MetricTemplate, *flaggerv1beta1.AlertProvider:
		if err := r.cache.Get(ctx, key, obj, opts...); err == nil {
			return nil
		}
	}
	return r.live.Get(ctx, key, obj, opts...)
}

// List lists from the API server.
func (r cacheFirstReader) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	return r.live.List(ctx, list, opts...)
}
