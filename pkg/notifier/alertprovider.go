package notifier

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// Defaults of AlertProvider fields, as Flagger's.
const (
	DefaultChannel  = "general"
	DefaultUsername = "flagger"
)

// CanaryResolver builds the notifier of one Canary. *Dispatcher implements
// it; a caller holding the Canary uses it instead of Post to skip reading
// the Canary again and to learn which alerts cannot be delivered.
type CanaryResolver interface {
	ForCanary(ctx context.Context, cd *flaggerv1beta1.Canary) (Interface, error)
}

// ForCanary returns the notifier of a Canary: the AlertProviders of its
// analysis.alerts, each receiving the messages at or above the alert's
// severity (empty means info), or, when it has no alerts, the global
// notifier with every message, as Flagger does. Posting to it only queues.
//
// An error names the alerts whose provider cannot be used (missing
// AlertProvider or Secret, another namespace under NoCrossNamespaceRefs);
// the returned notifier is usable all the same and delivers to the others.
func (d *Dispatcher) ForCanary(ctx context.Context, cd *flaggerv1beta1.Canary) (Interface, error) {
	var alerts []flaggerv1beta1.CanaryAlert
	if cd.Spec.Analysis != nil {
		alerts = cd.Spec.Analysis.Alerts
	}
	n := &canaryNotifier{d: d}
	if len(alerts) == 0 {
		n.targets = d.global
		return n, nil
	}
	var errs []error
	for _, a := range alerts {
		t, err := d.alertTarget(ctx, cd, a)
		if err != nil {
			errs = append(errs, fmt.Errorf("alert %q: %w", a.Name, err))
			continue
		}
		n.targets = append(n.targets, t)
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("resolving the alerts of canary %s/%s: %w", cd.Namespace, cd.Name, errors.Join(errs...))
	}
	return n, nil
}

// alertTarget builds the notifier of one alert.
func (d *Dispatcher) alertTarget(ctx context.Context, cd *flaggerv1beta1.Canary, a flaggerv1beta1.CanaryAlert) (target, error) {
	key := client.ObjectKey{Namespace: a.ProviderRef.Namespace, Name: a.ProviderRef.Name}
	if key.Namespace == "" {
		key.Namespace = cd.Namespace
	}
	if d.opts.NoCrossNamespaceRefs && key.Namespace != cd.Namespace {
		return target{}, fmt.Errorf("alert provider %s is in another namespace than the canary, which -no-cross-namespace-refs forbids", key)
	}
	if d.opts.Reader == nil {
		return target{}, fmt.Errorf("alert provider %s cannot be read: the dispatcher has no Kubernetes reader", key)
	}
	kind, cfg, err := ProviderConfig(ctx, d.opts.Reader, key)
	if err != nil {
		return target{}, err
	}
	cfg.ClusterName, cfg.HTTPClient = d.opts.ClusterName, d.opts.HTTPClient
	n, err := New(kind, cfg)
	if err != nil {
		return target{}, fmt.Errorf("alert provider %s: %w", key, err)
	}
	return target{kind: kind, name: "AlertProvider " + key.String(), threshold: a.Severity, notifier: n}, nil
}

// canary reads a Canary; nil without error means it no longer exists.
func (d *Dispatcher) canary(ctx context.Context, key client.ObjectKey) (*flaggerv1beta1.Canary, error) {
	cd := &flaggerv1beta1.Canary{}
	if err := d.opts.Reader.Get(ctx, key, cd); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("reading canary %s for its alerts: %w", key, err)
	}
	return cd, nil
}

// canaryNotifier queues messages for the targets of one Canary.
type canaryNotifier struct {
	d       *Dispatcher
	targets []target
}

// Post queues the message for every target whose threshold it meets.
func (n *canaryNotifier) Post(_ context.Context, m Message) error {
	return n.d.enqueue(m, n.targets)
}

// ProviderConfig reads the AlertProvider at key and the Secret it names and
// returns its kind (spec.type) and notifier Config. The Secret's address,
// token, proxy and username keys override the spec's fields; channel and
// username default to general and flagger. A missing AlertProvider or
// Secret is an error that wraps the API's NotFound error.
func ProviderConfig(ctx context.Context, r client.Reader, key client.ObjectKey) (string, Config, error) {
	ap := &flaggerv1beta1.AlertProvider{}
	if err := r.Get(ctx, key, ap); err != nil {
		if apierrors.IsNotFound(err) {
			return "", Config{}, fmt.Errorf("alert provider %s not found: %w", key, err)
		}
		return "", Config{}, fmt.Errorf("reading alert provider %s: %w", key, err)
	}
	spec := ap.Spec
	cfg := Config{Address: spec.Address, Channel: spec.Channel, Username: spec.Username, Proxy: spec.Proxy}
	if spec.SecretRef != nil {
		skey := client.ObjectKey{Namespace: key.Namespace, Name: spec.SecretRef.Name}
		secret := &corev1.Secret{}
		if err := r.Get(ctx, skey, secret); err != nil {
			if apierrors.IsNotFound(err) {
				return "", Config{}, fmt.Errorf("secret %s of alert provider %s not found: %w", skey, key, err)
			}
			return "", Config{}, fmt.Errorf("reading secret %s of alert provider %s: %w", skey, key, err)
		}
		for k, field := range map[string]*string{"address": &cfg.Address, "token": &cfg.Token, "proxy": &cfg.Proxy, "username": &cfg.Username} {
			if v := secret.Data[k]; len(v) > 0 {
				*field = string(v)
			}
		}
	}
	if cfg.Channel == "" {
		cfg.Channel = DefaultChannel
	}
	if cfg.Username == "" {
		cfg.Username = DefaultUsername
	}
	if cfg.Address == "" && (spec.Type != flaggerv1beta1.AlertProviderSlack || cfg.Token == "") {
		return "", Config{}, fmt.Errorf("alert provider %s has no address: set spec.address or the address key of its secret", key)
	}
	return spec.Type, cfg, nil
}
