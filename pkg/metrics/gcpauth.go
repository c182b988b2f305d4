package metrics

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

const (
	// gcpMonitoringReadScope is the OAuth 2.0 scope that lets a token read
	// Cloud Monitoring data (timeSeries.query, metricDescriptors.list).
	gcpMonitoringReadScope = "https://www.googleapis.com/auth/monitoring.read"
	// gcpDefaultTokenURI is Google's OAuth 2.0 token endpoint, for keys
	// without a token_uri.
	gcpDefaultTokenURI = "https://oauth2.googleapis.com/token"
	// gcpJWTBearerGrant is the grant type of RFC 7523: an access token for
	// a signed JWT.
	gcpJWTBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// gcpMetadataHost is the metadata server of GCE and GKE (workload
	// identity); GCE_METADATA_HOST replaces it, as in Google's own tools.
	gcpMetadataHost = "metadata.google.internal"
	// gcpMetadataTokenPath returns a token of the instance's (or the
	// workload's) default service account.
	gcpMetadataTokenPath = "/computeMetadata/v1/instance/service-accounts/default/token"
	// gcpAssertionLifetime is how long a signed JWT is valid: Google
	// accepts at most one hour.
	gcpAssertionLifetime = time.Hour
)

// gcpServiceAccountKey is the part of a service account JSON key that the
// JWT bearer grant needs.
type gcpServiceAccountKey struct {
	Type         string `json:"type"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// parseGCPServiceAccountKey reads a service account JSON key and its RSA
// private key (PKCS #8, as Google issues them, or PKCS #1).
func parseGCPServiceAccountKey(raw string) (gcpServiceAccountKey, *rsa.PrivateKey, error) {
	var key gcpServiceAccountKey
	if err := json.Unmarshal([]byte(raw), &key); err != nil {
		return key, nil, fmt.Errorf("serviceAccountKey is not a service account JSON key: %w", err)
	}
	switch {
	case key.Type != "" && key.Type != "service_account":
		return key, nil, fmt.Errorf("serviceAccountKey is a %q credential; only service_account keys are supported", key.Type)
	case key.ClientEmail == "":
		return key, nil, errors.New("serviceAccountKey has no client_email")
	case key.PrivateKey == "":
		return key, nil, errors.New("serviceAccountKey has no private_key")
	}
	if key.TokenURI == "" {
		key.TokenURI = gcpDefaultTokenURI
	}
	block, _ := pem.Decode([]byte(key.PrivateKey))
	if block == nil {
		return key, nil, errors.New("the private_key of serviceAccountKey is not PEM")
	}
	var signer *rsa.PrivateKey
	if parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		rsaKey, ok := parsed.(*rsa.PrivateKey)
		if !ok {
			return key, nil, fmt.Errorf("the private_key of serviceAccountKey is a %T, not an RSA key", parsed)
		}
		signer = rsaKey
	} else if rsaKey, err1 := x509.ParsePKCS1PrivateKey(block.Bytes); err1 == nil {
		signer = rsaKey
	} else {
		return key, nil, fmt.Errorf("reading the private_key of serviceAccountKey: %w", err)
	}
	return key, signer, nil
}

// gcpToken is an access token and when it stops being used.
type gcpToken struct {
	value      string
	validUntil time.Time
}

// gcpTokenSource hands out OAuth 2.0 access tokens for Google APIs. It
// fetches one with fetch and keeps it until shortly before it expires;
// concurrent callers wait for a single fetch.
type gcpTokenSource struct {
	// fetch returns a new token and its lifetime.
	fetch func(ctx context.Context) (string, time.Duration, error)
	now   func() time.Time

	mu     sync.Mutex
	cached gcpToken
}

// token returns a valid access token, fetching a new one when the cached
// one is missing or about to expire.
func (s *gcpTokenSource) token(ctx context.Context) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.cached.value != "" && now.Before(s.cached.validUntil) {
		return s.cached.value, nil
	}
	value, lifetime, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	// Stop using a token a minute before it expires (half its lifetime
	// for short-lived ones), so that a request never carries one that
	// expires on the way.
	s.cached = gcpToken{value: value, validUntil: now.Add(lifetime - min(time.Minute, lifetime/2))}
	return value, nil
}

// gcpTokenAnswer is the answer of Google's token endpoint and of the
// metadata server.
type gcpTokenAnswer struct {
	AccessToken string `json:"access_token"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// readGCPToken decodes a token answer from source (named in errors).
func readGCPToken(body []byte, source string) (string, time.Duration, error) {
	var answer gcpTokenAnswer
	if err := json.Unmarshal(body, &answer); err != nil {
		return "", 0, fmt.Errorf("%s: the answer is not a token: %w", source, err)
	}
	if answer.AccessToken == "" {
		return "", 0, fmt.Errorf("%s: the answer has no access_token", source)
	}
	if answer.TokenType != "" && !strings.EqualFold(answer.TokenType, "Bearer") {
		return "", 0, fmt.Errorf("%s: the token type is %q, not Bearer", source, answer.TokenType)
	}
	return answer.AccessToken, time.Duration(answer.ExpiresIn) * time.Second, nil
}

// newServiceAccountTokens returns a token source that trades a JWT signed
// with the service account's key for an access token at the key's
// token_uri (the OAuth 2.0 JWT bearer grant).
func newServiceAccountTokens(key gcpServiceAccountKey, signer *rsa.PrivateKey, client *http.Client, now func() time.Time) *gcpTokenSource {
	fetch := func(ctx context.Context) (string, time.Duration, error) {
		assertion, err := signGCPAssertion(key, signer, now())
		if err != nil {
			return "", 0, err
		}
		form := url.Values{"grant_type": {gcpJWTBearerGrant}, "assertion": {assertion}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, key.TokenURI, strings.NewReader(form.Encode()))
		if err != nil {
			return "", 0, fmt.Errorf("stackdriver: the token_uri of serviceAccountKey: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept", "application/json")
		body, err := callAPI(client, req, "stackdriver token endpoint")
		if err != nil {
			return "", 0, fmt.Errorf("getting an access token for %s: %w", key.ClientEmail, err)
		}
		return readGCPToken(body, "stackdriver token endpoint "+key.TokenURI)
	}
	return &gcpTokenSource{fetch: fetch, now: now}
}

// signGCPAssertion builds and signs (RS256) the JWT of the bearer grant:
// the service account as issuer, the monitoring read scope, the token
// endpoint as audience, valid for an hour from now.
func signGCPAssertion(key gcpServiceAccountKey, signer *rsa.PrivateKey, now time.Time) (string, error) {
	header := map[string]string{"alg": "RS256", "typ": "JWT"}
	if key.PrivateKeyID != "" {
		header["kid"] = key.PrivateKeyID
	}
	claims := map[string]any{
		"iss":   key.ClientEmail,
		"scope": gcpMonitoringReadScope,
		"aud":   key.TokenURI,
		"iat":   now.Unix(),
		"exp":   now.Add(gcpAssertionLifetime).Unix(),
	}
	h, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("encoding the JWT header: %w", err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encoding the JWT claims: %w", err)
	}
	enc := base64.RawURLEncoding
	signingInput := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	digest := sha256.Sum256([]byte(signingInput))
	sig, err := rsa.SignPKCS1v15(rand.Reader, signer, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing the JWT with serviceAccountKey: %w", err)
	}
	return signingInput + "." + enc.EncodeToString(sig), nil
}

// newMetadataTokens returns a token source that asks the GCE/GKE metadata
// server for a token of the default service account: on GKE with workload
// identity, the Google service account bound to Sluice's Kubernetes
// service account. lookupEnv reads GCE_METADATA_HOST.
func newMetadataTokens(client *http.Client, lookupEnv func(string) (string, bool), now func() time.Time) *gcpTokenSource {
	host := gcpMetadataHost
	if h, ok := lookupEnv("GCE_METADATA_HOST"); ok && h != "" {
		host = h
	}
	endpoint := "http://" + host + gcpMetadataTokenPath
	fetch := func(ctx context.Context) (string, time.Duration, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint, nil)
		if err != nil {
			return "", 0, fmt.Errorf("stackdriver: the metadata server address %q: %w", host, err)
		}
		req.Header.Set("Metadata-Flavor", "Google")
		body, err := callAPI(client, req, "stackdriver metadata server")
		if err != nil {
			return "", 0, fmt.Errorf("getting an access token from the metadata server (workload identity) "+
				"failed; without it, put a serviceAccountKey in the MetricTemplate's Secret: %w", err)
		}
		return readGCPToken(body, "stackdriver metadata server "+host)
	}
	return &gcpTokenSource{fetch: fetch, now: now}
}

// gcpAuthTransport sets a bearer token from tokens on every request, and
// rewrites Google's JSON error answers ({"error": {"code", "message",
// "status"}}) into "STATUS: message", so that callAPI's errors read well.
type gcpAuthTransport struct {
	base   http.RoundTripper
	tokens *gcpTokenSource
}

// RoundTrip authorizes a copy of req and sends it.
func (t *gcpAuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	token, err := t.tokens.token(req.Context())
	if err != nil {
		return nil, err
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := t.base.RoundTrip(req)
	if err != nil || resp.StatusCode < 300 {
		return resp, err
	}
	return explainGoogleError(resp), nil
}

// CloseIdleConnections closes the idle connections of the base transport.
func (t *gcpAuthTransport) CloseIdleConnections() {
	if c, ok := t.base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// explainGoogleError replaces the body of a Google API error answer with
// its status and message. Other bodies are left as they are.
func explainGoogleError(resp *http.Response) *http.Response {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	_ = resp.Body.Close()
	text := string(raw)
	if err == nil {
		var e struct {
			Error struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
				Status  string `json:"status"`
			} `json:"error"`
		}
		if json.Unmarshal(raw, &e) == nil && (e.Error.Message != "" || e.Error.Status != "") {
			text = strings.TrimPrefix(e.Error.Status+": "+e.Error.Message, ": ")
			text = strings.TrimSuffix(text, ": ")
		}
	}
	resp.Body = io.NopCloser(strings.NewReader(text))
	resp.ContentLength = int64(len(text))
	return resp
}
