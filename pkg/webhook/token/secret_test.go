package token

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/sluicedev/sluice/internal/testenv"
)

func TestParseSecretRef_WantsNamespaceSlashName(t *testing.T) {
	t.Parallel()
	if key, err := ParseSecretRef("sluice-system/loadtester-token"); err != nil || key.Namespace != "sluice-system" || key.Name != "loadtester-token" {
		t.Errorf("ParseSecretRef = %v, %v", key, err)
	}
	for _, bad := range []string{"", "token", "/token", "ns/", "Bad_NS/token", "ns/a/b"} {
		if _, err := ParseSecretRef(bad); err == nil {
			t.Errorf("ParseSecretRef(%q) succeeded, want an error", bad)
		}
	}
}

// SecretToken against a real API server: it reads the token when a call
// needs it, keeps it for its TTL, follows a rotation after the TTL, and
// explains a missing Secret, a missing key and missing RBAC.
func TestSecret_ReadsTheSecretAtCallTime(t *testing.T) {
	env, err := testenv.Start(testenv.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	ctx := context.Background()
	c := env.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "sluice-system"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1700000000, 0)
	src, err := NewSecret(c, "sluice-system/loadtester-token")
	if err != nil {
		t.Fatal(err)
	}
	src.TTL, src.Now = time.Minute, func() time.Time { return now }

	if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), `the Secret sluice-system/loadtester-token does not exist: create it with the key "token"`) {
		t.Errorf("Token before the Secret exists = %v", err)
	}
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "loadtester-token", Namespace: "sluice-system"}, Data: map[string][]byte{"other": []byte("x")}}
	if err := c.Create(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), `has no key "token"`) {
		t.Errorf("Token without the key = %v", err)
	}
	secret.Data = map[string][]byte{"token": []byte("first\n")}
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	if got, err := src.Token(ctx); err != nil || got != "first" {
		t.Errorf("Token = %q, %v; want first", got, err)
	}
	secret.Data["token"] = []byte("second")
	if err := c.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	now = now.Add(59 * time.Second)
	if got, _ := src.Token(ctx); got != "first" {
		t.Errorf("within the TTL Token = %q, want the kept first", got)
	}
	now = now.Add(2 * time.Second)
	if got, _ := src.Token(ctx); got != "second" {
		t.Errorf("after the TTL Token = %q, want the rotated second", got)
	}

	user, err := env.Environment.AddUser(envtest.User{Name: "no-rbac"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noRBAC, err := client.New(user.Config(), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	forbidden := &Secret{Reader: noRBAC, Secret: src.Secret}
	if _, err := forbidden.Token(ctx); err == nil || !strings.Contains(err.Error(), "grant Sluice's ServiceAccount get on secrets in namespace sluice-system") {
		t.Errorf("Token without RBAC = %v", err)
	}
}
