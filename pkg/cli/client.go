package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
	"github.com/sluicedev/sluice/pkg/router"
)

// clients reach the API server chosen by the connection flags.
type clients struct {
	config *rest.Config
	client client.WithWatch
	// namespace is the namespace of -n, or of the kubeconfig's context.
	namespace string
}

var errNoConfig = errors.New("no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config")

// newScheme returns the kinds the CLI reads: the built-in ones, Sluice's
// and the routing objects of every router.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	if err := errors.Join(clientgoscheme.AddToScheme(s), flaggerv1beta1.AddToScheme(s), router.AddToScheme(s)); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	return s, nil
}

// connect returns the clients, making them on first use.
func (a *app) connect() (*clients, error) {
	if a.clients != nil {
		return a.clients, nil
	}
	loader := a.flags.ToRawKubeConfigLoader()
	// With no configuration at all, cli-runtime falls back to
	// http://localhost:8080, which only yields a puzzling "connection
	// refused" later: say what is missing instead.
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, fmt.Errorf("reading the Kubernetes configuration: %w", err)
	}
	if len(raw.Clusters) == 0 && ptr.Deref(a.flags.APIServer, "") == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return nil, errNoConfig
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errNoConfig
		}
		return nil, fmt.Errorf("reading the Kubernetes configuration: %w", err)
	}
	ns, _, err := loader.Namespace()
	if err != nil {
		return nil, fmt.Errorf("reading the namespace from the Kubernetes configuration: %w", err)
	}
	cfg.UserAgent = "kubectl-sluice"
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", cfg.Host, err)
	}
	a.clients = &clients{config: cfg, client: c, namespace: ns}
	return a.clients, nil
}

// getCanary reads a Canary of the current namespace, with an error that
// says where it looked when it is not there.
func (a *app) getCanary(ctx context.Context, name string) (*flaggerv1beta1.Canary, *clients, error) {
	cs, err := a.connect()
	if err != nil {
		return nil, nil, err
	}
	cd := &flaggerv1beta1.Canary{}
	if err := cs.client.Get(ctx, client.ObjectKey{Namespace: cs.namespace, Name: name}, cd); err != nil {
		return nil, nil, canaryError(err, name, cs.namespace)
	}
	return cd, cs, nil
}

// canaryError turns an error reading Canaries into one line that says what
// to do.
func canaryError(err error, name, namespace string) error {
	switch {
	case apierrors.IsNotFound(err) && name != "":
		return fmt.Errorf("canary %q not found in namespace %q (list them with: kubectl sluice list -A)", name, namespace)
	case meta.IsNoMatchError(err), apierrors.IsNotFound(err):
		return errors.New("the Canary kind (flagger.app/v1beta1) is not installed in this cluster: install Sluice's CRDs (kubectl apply -k kustomize/base)")
	case apierrors.IsForbidden(err), apierrors.IsUnauthorized(err):
		return fmt.Errorf("not allowed: %w", err)
	}
	return err
}

// whoAmI returns the caller's user name from the SelfSubjectReview API, or
// "unknown" when the API server does not tell.
func (cs *clients) whoAmI(ctx context.Context) string {
	review := &authenticationv1.SelfSubjectReview{}
	if err := cs.client.Create(ctx, review); err != nil || review.Status.UserInfo.Username == "" {
		return "unknown"
	}
	return review.Status.UserInfo.Username
}
