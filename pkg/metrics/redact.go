package metrics

import (
	"errors"
	"regexp"
	"strings"
)

// redacted replaces a secret in a message.
const redacted = "REDACTED"

// secretParam finds the value of a URL query parameter whose name says it
// carries a secret: ?token=..., &api_key=..., X-Amz-Signature=... The
// value ends at the next parameter, fragment, quote or white space.
var secretParam = regexp.MustCompile(`(?i)([?&;](?:[a-z0-9_.-]*(?:token|secret|password|passwd|pwd|signature|credential|apikey|api_key|api-key|auth)[a-z0-9_.-]*|key|sig|code)=)[^&;#\s"'<>]*`)

// urlPassword finds the password of a URL's user information:
// https://user:password@host.
var urlPassword = regexp.MustCompile(`(://[^/\s:@"'<>]*:)[^/\s@"'<>]*@`)

// Redact returns text with the secrets a URL may carry replaced by
// REDACTED: the values of query parameters named like credentials (token,
// access_token, api_key, apikey, key, secret, password, signature, X-Amz-
// Credential, ...) and the password of user information. Sluice runs every
// message of a metric check through it before the message reaches the
// Canary's status, its events and the logs, since errors of HTTP clients
// quote the URL they requested.
func Redact(text string) string {
	// Most messages and queries hold neither: skip the expressions.
	if strings.ContainsAny(text, "?&;") && strings.Contains(text, "=") {
		text = secretParam.ReplaceAllString(text, "${1}"+redacted)
	}
	if strings.Contains(text, "://") && strings.Contains(text, "@") {
		text = urlPassword.ReplaceAllString(text, "${1}"+redacted+"@")
	}
	return text
}

// redactedError is an error whose message is redacted; it unwraps to the
// original, so that errors.Is keeps working.
type redactedError struct{ err error }

func (e redactedError) Error() string { return Redact(e.err.Error()) }
func (e redactedError) Unwrap() error { return e.err }

// redactError returns err with a redacted message, or nil.
func redactError(err error) error {
	if err == nil {
		return nil
	}
	var r redactedError
	if errors.As(err, &r) {
		return err
	}
	return redactedError{err}
}
