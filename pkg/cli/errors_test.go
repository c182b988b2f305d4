package cli

import (
	"os"
	"path/filepath"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestBadInput_OneClearLineAndExitCode1: every kind of bad input ends with
// exit code 1 and one line on standard error that says what is wrong.
func TestBadInput_OneClearLineAndExitCode1(t *testing.T) {
	t.Parallel()
	cd := playedCanary(t, "bad-input", "progressing-failed-check", nil)
	newNamespace(t, "bad-input-other")
	nobody := filepath.Join(t.TempDir(), "nobody")
	user, err := env.Environment.AddUser(envtest.User{Name: "nobody"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nobody, data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown canary", []string{"--kubeconfig", kubeconfig, "get", "nope", "-n", cd.Namespace},
			`canary "nope" not found in namespace "bad-input" (list them with: kubectl sluice list -A)`},
		{"wrong namespace", []string{"--kubeconfig", kubeconfig, "explain", "podinfo", "-n", "bad-input-other"},
			`canary "podinfo" not found in namespace "bad-input-other"`},
		{"unknown canary to promote", []string{"--kubeconfig", kubeconfig, "promote", "nope", "-n", cd.Namespace},
			`canary "nope" not found in namespace "bad-input"`},
		{"missing kubeconfig file", []string{"--kubeconfig", filepath.Join(t.TempDir(), "absent"), "list"},
			"reading the Kubernetes configuration: stat "},
		{"forbidden get", []string{"--kubeconfig", nobody, "get", "podinfo", "-n", cd.Namespace},
			`not allowed: canaries.flagger.app "podinfo" is forbidden: User "nobody" cannot get resource "canaries" in API group "flagger.app" in the namespace "bad-input"`},
		{"forbidden list", []string{"--kubeconfig", nobody, "list", "-A"},
			`not allowed: canaries.flagger.app is forbidden: User "nobody" cannot list resource "canaries" in API group "flagger.app" at the cluster scope`},
		{"forbidden pause", []string{"--kubeconfig", nobody, "pause", "podinfo", "-n", cd.Namespace}, `User "nobody" cannot get resource "canaries"`},
		{"unreachable server", []string{"--kubeconfig", kubeconfig, "--server", "https://127.0.0.1:1", "list"}, "connect: connection refused"},
		{"no name", []string{"--kubeconfig", kubeconfig, "get"}, "name the Canary: kubectl sluice get NAME"},
		{"two names", []string{"--kubeconfig", kubeconfig, "explain", "a", "b"}, "one Canary at a time, got 2 names"},
		{"bad gate action", []string{"--kubeconfig", kubeconfig, "gate", "unlock", "podinfo"}, "kubectl sluice gate open|close NAME"},
		{"unknown command", []string{"rollback"}, `unknown command "rollback"`},
		{"unknown flag", []string{"list", "--colour"}, "unknown flag: --colour"},
		{"bad selector", []string{"--kubeconfig", kubeconfig, "list", "-l", "a b"}, `invalid --selector "a b"`},
		{"watch with -o", []string{"--kubeconfig", kubeconfig, "get", "podinfo", "-n", cd.Namespace, "-w", "-o", "json"}, "--watch shows the tree"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sluiceIn(t.Context(), t, Options{}, tc.args...).failsWith(t, tc.want)
		})
	}
}

// TestBadInput_NoKubeconfig: without --kubeconfig, KUBECONFIG or
// ~/.kube/config, the answer says where a configuration is looked for.
func TestBadInput_NoKubeconfig(t *testing.T) {
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "absent"))
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	sluiceIn(t.Context(), t, Options{}, "list").
		failsWith(t, "no Kubernetes configuration found: pass --kubeconfig, set KUBECONFIG or create ~/.kube/config")
}
