package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	flaggerv1beta1 "github.com/sluicedev/sluice/api/v1beta1"
)

// gateTypes are the webhook types whose load tester gates `gate` opens.
var gateTypes = []flaggerv1beta1.HookType{
	flaggerv1beta1.ConfirmRolloutHook, flaggerv1beta1.ConfirmTrafficIncreaseHook, flaggerv1beta1.ConfirmPromotionHook,
}

// gateTimeout bounds one call to the load tester.
const gateTimeout = 10 * time.Second

// gateCommand is `gate open|close NAME`.
func (a *app) gateCommand() *cobra.Command {
	var direct bool
	cmd := &cobra.Command{
		Use:   "gate open|close NAME",
		Short: "Open or close the load tester's manual gate that the Canary's confirm-* webhooks ask",
		Long: `gate opens or closes the manual gate of the load tester whose /gate/check the Canary's
confirm-rollout, confirm-traffic-increase or confirm-promotion webhooks call. A load tester addressed
as an in-cluster Service (http://flagger-loadtester.test/gate/check) is reached through the API
server's service proxy, so no port-forward is needed; --direct calls the webhook's address as it is.`,
		Example: `  kubectl sluice gate open podinfo -n test
  kubectl sluice gate close podinfo -n test --direct`,
		ValidArgs: []string{"open", "close"},
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 2 || (args[0] != "open" && args[0] != "close") {
				return errors.New("say what to do and to which Canary: kubectl sluice gate open|close NAME")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.setGate(cmd.Context(), args[0], args[1], direct)
		},
	}
	cmd.Flags().BoolVar(&direct, "direct", false, "Call the webhook's address directly instead of through the API server's service proxy.")
	return cmd
}

// gateURLs returns the distinct /gate/check addresses of the Canary's
// webhooks of the given types.
func gateURLs(cd *flaggerv1beta1.Canary, types []flaggerv1beta1.HookType) []string {
	var out []string
	if cd.Spec.Analysis == nil {
		return nil
	}
	for _, h := range cd.Spec.Analysis.Webhooks {
		if slices.Contains(types, h.EffectiveType()) && strings.HasSuffix(h.URL, "/gate/check") && !slices.Contains(out, h.URL) {
			out = append(out, h.URL)
		}
	}
	return out
}

func (a *app) setGate(ctx context.Context, action, name string, direct bool) error {
	cd, cs, err := a.getCanary(ctx, name)
	if err != nil {
		return err
	}
	urls := gateURLs(cd, gateTypes)
	if len(urls) == 0 {
		return fmt.Errorf("canary %s/%s has no confirm-rollout, confirm-traffic-increase or confirm-promotion webhook calling a load tester's /gate/check, so there is no gate to %s",
			cd.Namespace, cd.Name, action)
	}
	body, err := json.Marshal(map[string]string{"name": cd.Name, "namespace": cd.Namespace})
	if err != nil {
		return fmt.Errorf("encoding the gate request: %w", err)
	}
	for _, check := range urls {
		target := strings.TrimSuffix(check, "/check") + "/" + action
		caller, via, err := a.gateCaller(ctx, cs, cd, target, direct)
		if err != nil {
			return err
		}
		answer, err := caller(ctx, body)
		if err != nil {
			return fmt.Errorf("%s the gate at %s (%s): %w", gerund(action), target, via, err)
		}
		fmt.Fprintf(a.out(), "%s: %s (%s)\n", target, answer, via)
	}
	return nil
}

func gerund(action string) string {
	if action == "open" {
		return "opening"
	}
	return "closing"
}

// gateCall posts a gate request and returns the load tester's answer.
type gateCall func(ctx context.Context, body []byte) (string, error)

// gateCaller decides how to reach a load tester address: through the API
// server's service proxy when it names a Service of the cluster, else
// directly.
func (a *app) gateCaller(ctx context.Context, cs *clients, cd *flaggerv1beta1.Canary, target string, direct bool) (gateCall, string, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, "", fmt.Errorf("the webhook address %s is not a URL: %w", target, err)
	}
	if !direct {
		svc, ns, ok := serviceOf(u.Hostname(), cd.Namespace)
		if ok {
			found := &corev1.Service{}
			switch err := cs.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: svc}, found); {
			case err == nil:
				return a.proxyCaller(cs, u, ns, svc)
			case !apierrors.IsNotFound(err):
				return nil, "", fmt.Errorf("looking up the load tester's Service %s/%s: %w (or pass --direct)", ns, svc, err)
			}
		}
	}
	return func(ctx context.Context, body []byte) (string, error) { return postDirect(ctx, target, body) }, "directly", nil
}

// serviceOf reads a host name as a Service of the cluster: svc,
// svc.ns, svc.ns.svc or svc.ns.svc.<cluster domain>.
func serviceOf(host, defaultNS string) (svc, ns string, ok bool) {
	if host == "" || host == "localhost" || net.ParseIP(host) != nil {
		return "", "", false
	}
	labels := strings.Split(host, ".")
	switch {
	case len(labels) == 1:
		return labels[0], defaultNS, true
	case len(labels) == 2, labels[2] == "svc":
		return labels[0], labels[1], true
	}
	return "", "", false
}

// proxyCaller posts through the API server's service proxy:
// /api/v1/namespaces/<ns>/services/[https:]<svc>:<port>/proxy/<path>.
func (a *app) proxyCaller(cs *clients, u *url.URL, ns, svc string) (gateCall, string, error) {
	kc, err := kubernetes.NewForConfig(cs.config)
	if err != nil {
		return nil, "", fmt.Errorf("making a client for the service proxy: %w", err)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[u.Scheme]
		if port == "" {
			port = "80"
		}
	}
	ref := svc + ":" + port
	if u.Scheme == "https" {
		ref = "https:" + ref
	}
	call := func(ctx context.Context, body []byte) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, gateTimeout)
		defer cancel()
		out, err := kc.CoreV1().RESTClient().Post().Namespace(ns).Resource("services").Name(ref).SubResource("proxy").
			Suffix(u.Path).SetHeader("Content-Type", "application/json").Body(body).DoRaw(ctx)
		if err != nil {
			return "", fmt.Errorf("%s", strings.TrimSpace(shortError(err)))
		}
		return strings.TrimSpace(string(out)), nil
	}
	return call, fmt.Sprintf("through the API server's proxy to Service %s/%s port %s", ns, svc, port), nil
}

// postDirect posts to the load tester's address.
func postDirect(ctx context.Context, target string, body []byte) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, gateTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("building the request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	text := strings.TrimSpace(string(answer))
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("status %d: %s", resp.StatusCode, text)
	}
	return text, nil
}
