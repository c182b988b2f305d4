package webhook

import (
	"strings"
	"testing"
	"unicode"
)

// FuzzRedact: whatever surrounds it, a secret given as ?token=<secret> or
// in a URL's userinfo never survives Redact, and Redact never panics. The
// seed corpus is in testdata/fuzz/FuzzRedact.
func FuzzRedact(f *testing.F) {
	f.Fuzz(func(t *testing.T, prefix, secret, suffix string) {
		secret = strings.Map(func(r rune) rune {
			if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)) {
				return r
			}
			return -1
		}, secret)
		_ = Redact(prefix + secret + suffix)
		const around = " https://hooks.example.com/x?token=& POST http://@h/ redacted"
		if len(secret) < 4 || strings.Contains(prefix+around+suffix, secret) {
			return
		}
		for _, msg := range []string{
			prefix + " https://hooks.example.com/x?token=" + secret + "&" + suffix,
			prefix + " POST http://" + secret + "@h/ " + suffix,
		} {
			if got := Redact(msg); strings.Contains(got, secret) {
				t.Fatalf("Redact(%q) = %q shows %q", msg, got, secret)
			}
		}
	})
}
