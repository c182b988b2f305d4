package webhook

import (
	"regexp"
	"strings"
)

// Redacted replaces a secret in a message.
const Redacted = "redacted"

var (
	// userinfo is the user[:password]@ part of a URL.
	userinfo = regexp.MustCompile(`(?i)\b([a-z][a-z0-9+.\-]*://)[^/?#\s@"'<>]+@`)
	// param is a name=value pair in a query, a fragment or running text.
	param = regexp.MustCompile(`(^|[?&;#\s,(\[{"'])([^=&#\s"'<>?;,(){}\[\]]+)=([^&#\s"'<>;,)\]}]*)`)
	// bearer is an Authorization header's credentials.
	bearer = regexp.MustCompile(`(?i)\b(bearer|basic)(\s+)([a-z0-9\-._~+/]+=*)`)
)

// secretWords are the words of a parameter name that make its value a
// secret: token, api_key, access_token, X-Api-Key, client_secret,
// password, sig...
var secretWords = map[string]bool{
	"token": true, "key": true, "apikey": true, "secret": true, "password": true, "passwd": true, "pwd": true,
	"pass": true, "signature": true, "sig": true, "auth": true, "authorization": true, "credential": true,
	"credentials": true, "code": true, "session": true, "sessionid": true, "jwt": true, "bearer": true,
}

// secretParam reports whether a parameter's name says its value is secret.
func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, suffix := range []string{"token", "key", "secret", "password"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	for _, w := range strings.FieldsFunc(n, func(r rune) bool { return r == '_' || r == '-' || r == '.' }) {
		if secretWords[w] {
			return true
		}
	}
	return false
}

// Redact returns a message with the secrets it may carry replaced by
// "redacted": the user and password of URLs (https://user:pw@host), the
// values of query, fragment and text parameters named like a secret
// (?token=, api_key=, access_token=, X-Amz-Signature=, password=...), and
// Bearer or Basic credentials. Use it on every message that goes to a
// status, an event, a log line or an alert and may hold a URL or an
// answer's text.
func Redact(msg string) string {
	msg = userinfo.ReplaceAllString(msg, "${1}"+Redacted+"@")
	msg = param.ReplaceAllStringFunc(msg, func(m string) string {
		sub := param.FindStringSubmatch(m)
		value, colon := strings.CutSuffix(sub[3], ":") // "POST url?token=x: status 500"
		if !secretParam(sub[2]) || value == "" {
			return m
		}
		if colon {
			return sub[1] + sub[2] + "=" + Redacted + ":"
		}
		return sub[1] + sub[2] + "=" + Redacted
	})
	return bearer.ReplaceAllStringFunc(msg, func(m string) string {
		sub := bearer.FindStringSubmatch(m)
		if !credential(sub[3]) {
			return m // prose: "bearer token"
		}
		return sub[1] + sub[2] + Redacted
	})
}

// credential reports whether a word after Bearer or Basic looks like
// credentials rather than prose: it has a digit or a symbol, or is long.
func credential(w string) bool {
	return len(w) >= 20 || strings.ContainsAny(w, "0123456789-._~+/=")
}

// redactedError is an error whose message is redacted; errors.Is and As
// still see the error it wraps.
type redactedError struct{ err error }

func (e *redactedError) Error() string { return Redact(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

// redactErr wraps err so that its message is redacted.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{err: err}
}
