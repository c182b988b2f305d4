// Package token reads the bearer token that Sluice sends with webhook
// calls from a Kubernetes Secret. It is apart from package webhook so that
// the load tester, which shares webhook's payload, does not link the
// Kubernetes client.
//
// It is not a stable Go API: Sluice's packages under pkg/ may change
// without notice.
package token

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Key is the key of the Secret that holds the webhook bearer token.
const Key = "token"

// DefaultTTL is how long a Secret keeps a token it read.
const DefaultTTL = 30 * time.Second

// Secret is a webhook.TokenSource that reads the bearer token from the key "token" of a Secret when
// a call needs it, and keeps it for TTL, so that a rotated token is used
// within TTL and an idle controller reads nothing. Reader should read from
// the API server (the manager's API reader), so that no Secret is cached or
// watched. Its methods may be called from several goroutines.
type Secret struct {
	// Reader reads the Secret.
	Reader client.Reader
	// Secret names the Secret.
	Secret types.NamespacedName
	// TTL is how long a token read is kept; 0 means DefaultTTL.
	TTL time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	token string
	read  time.Time
}

// ParseSecretRef reads a Secret reference written namespace/name.
func ParseSecretRef(ref string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(ref, "/")
	if !ok || len(validation.IsDNS1123Label(ns)) > 0 || len(validation.IsDNS1123Subdomain(name)) > 0 {
		return types.NamespacedName{}, fmt.Errorf("%q is not a Secret reference: want namespace/name", ref)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// NewSecret returns a Secret reading the Secret ref (namespace/name) with
// r.
func NewSecret(r client.Reader, ref string) (*Secret, error) {
	key, err := ParseSecretRef(ref)
	if err != nil {
		return nil, err
	}
	return &Secret{Reader: r, Secret: key}, nil
}

// Token returns the token, read again once TTL has passed since the last
// read. Errors are not kept: the next call reads again.
func (s *Secret) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ttl := s.TTL
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if s.token != "" && now().Sub(s.read) < ttl {
		return s.token, nil
	}
	var secret corev1.Secret
	if err := s.Reader.Get(ctx, s.Secret, &secret); err != nil {
		switch {
		case apierrors.IsNotFound(err):
			return "", fmt.Errorf("the Secret %s does not exist: create it with the key %q", s.Secret, Key)
		case apierrors.IsForbidden(err):
			return "", fmt.Errorf("reading the Secret %s is forbidden: grant Sluice's ServiceAccount get on secrets in namespace %s: %w", s.Secret, s.Secret.Namespace, err)
		}
		return "", fmt.Errorf("reading the Secret %s: %w", s.Secret, err)
	}
	token := strings.TrimSpace(string(secret.Data[Key]))
	if token == "" {
		return "", fmt.Errorf("the Secret %s has no key %q, or it is empty", s.Secret, Key)
	}
	s.token, s.read = token, now()
	return token, nil
}
