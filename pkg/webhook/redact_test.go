package webhook

import (
	"errors"
	"fmt"
	"testing"
)

func TestRedact_HidesSecretsInMessages(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"POST http://loadtester.test/?token=abc: status 500", "POST http://loadtester.test/?token=redacted: status 500"},
		{`Post "https://hooks.example.com/x?team=a&api_key=k-1&access_token=t.2#frag": EOF`,
			`Post "https://hooks.example.com/x?team=a&api_key=redacted&access_token=redacted#frag": EOF`},
		{"https://user:pass@example.com/a and http://tok3n@example.com:8080", "https://redacted@example.com/a and http://redacted@example.com:8080"},
		{"GET https://bucket.s3.amazonaws.com/o?X-Amz-Signature=abc123&X-Amz-Credential=AKIA/x&X-Amz-Date=2024",
			"GET https://bucket.s3.amazonaws.com/o?X-Amz-Signature=redacted&X-Amz-Credential=redacted&X-Amz-Date=2024"},
		{"answer: password=hunter2, user=bob", "answer: password=redacted, user=bob"},
		{"?apikey=1&sig=2&client_secret=3&code=4&sessionid=5&auth=6", "?apikey=redacted&sig=redacted&client_secret=redacted&code=redacted&sessionid=redacted&auth=redacted"},
		{"Authorization: Bearer eyJhbGciOi.J9x-y_z= sent", "Authorization: Bearer redacted sent"},
		{"basic dXNlcjpwdw==", "basic redacted"},
		{"token=", "token="},
		{"missing or wrong bearer token: send Authorization: Bearer <token>", "missing or wrong bearer token: send Authorization: Bearer <token>"},
		{"http://podinfo.test:9898/?page=2&q=token", "http://podinfo.test:9898/?page=2&q=token"},
		{"an email a@b.c and x=1", "an email a@b.c and x=1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q)\n = %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactErr_KeepsTheErrorChain(t *testing.T) {
	t.Parallel()
	base := errors.New("connection refused")
	err := redactErr(fmt.Errorf("POST http://x/?token=abc: %w", base))
	if err.Error() != "POST http://x/?token=redacted: connection refused" || !errors.Is(err, base) {
		t.Errorf("redactErr = %q, errors.Is = %v", err, errors.Is(err, base))
	}
	if redactErr(nil) != nil {
		t.Error("redactErr(nil) is not nil")
	}
}
