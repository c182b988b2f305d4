package canary

import (
	"context"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ConfigCache keeps the data of the ConfigMaps that targets use, so that
// a reconcile reads a ConfigMap from the API server only when it changed:
// the controller watches ConfigMaps by metadata, and a ConfigMap whose
// resourceVersion there is the one read last is served from here. Secrets
// are neither watched nor kept: they are read by name each time.
type ConfigCache struct {
	mu sync.Mutex
	m  map[types.NamespacedName]*corev1.ConfigMap
}

// get returns the ConfigMap, from the cache when its resourceVersion in
// the metadata watch (meta, through c) is the one kept, else from reader.
func (cc *ConfigCache) get(ctx context.Context, meta client.Reader, reader client.Reader, key types.NamespacedName) (*corev1.ConfigMap, error) {
	pm := &metav1.PartialObjectMetadata{}
	pm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	if err := meta.Get(ctx, key, pm); err == nil {
		cc.mu.Lock()
		kept, ok := cc.m[key]
		cc.mu.Unlock()
		if ok && kept.ResourceVersion == pm.ResourceVersion {
			return kept.DeepCopy(), nil
		}
	}
	cm := &corev1.ConfigMap{}
	if err := reader.Get(ctx, key, cm); err != nil {
		return nil, err
	}
	cc.mu.Lock()
	if cc.m == nil {
		cc.m = map[types.NamespacedName]*corev1.ConfigMap{}
	}
	cc.m[key] = cm.DeepCopy()
	cc.mu.Unlock()
	return cm, nil
}

// Forget drops the ConfigMaps of a namespace and name, when a Canary that
// used them is gone; entries of ConfigMaps still used are refreshed as
// they change.
func (cc *ConfigCache) Forget(key types.NamespacedName) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	delete(cc.m, key)
}
