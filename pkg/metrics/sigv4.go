package metrics

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// sigv4Algorithm names AWS Signature Version 4 with HMAC-SHA256 in the
// string to sign and the Authorization header.
const sigv4Algorithm = "AWS4-HMAC-SHA256"

// sigv4Signer signs HTTP requests with AWS Signature Version 4, the
// scheme every AWS API (CloudWatch among them) authenticates with. It is
// written against AWS's published description of the algorithm: a
// canonical form of the request, a string to sign naming the date, region
// and service, a signing key derived from the secret by a chain of
// HMAC-SHA256 over those three and "aws4_request", and the hex HMAC of the
// string to sign under that key.
//
// It signs the host, the content type and every x-amz-* header, the
// session token included (X-Amz-Security-Token), which is what AWS
// requires; other headers are sent unsigned. The payload is hashed into
// the canonical request but not sent as x-amz-content-sha256, which only
// S3 requires. Paths are encoded but not normalised ("." and ".." are
// kept), which is enough for the RPC-style APIs whose path is "/".
type sigv4Signer struct {
	accessKeyID     string
	secretAccessKey string
	sessionToken    string
	region          string
	service         string
}

// sign sets X-Amz-Date, X-Amz-Security-Token (when there is a session
// token) and Authorization on req, for body sent at now. req's other
// headers must be final: changing a signed one afterwards voids the
// signature.
func (s sigv4Signer) sign(req *http.Request, body []byte, now time.Time) {
	now = now.UTC()
	amzDate := now.Format("20060102T150405Z")
	day := now.Format("20060102")
	req.Header.Set("X-Amz-Date", amzDate)
	if s.sessionToken != "" {
		req.Header.Set("X-Amz-Security-Token", s.sessionToken)
	}
	canonical, signedHeaders := canonicalRequest(req, hexSHA256(body))
	scope := day + "/" + s.region + "/" + s.service + "/aws4_request"
	toSign := strings.Join([]string{sigv4Algorithm, amzDate, scope, hexSHA256([]byte(canonical))}, "\n")
	signature := hex.EncodeToString(hmacSHA256(sigv4Key(s.secretAccessKey, day, s.region, s.service), toSign))
	req.Header.Set("Authorization", sigv4Algorithm+" Credential="+s.accessKeyID+"/"+scope+
		", SignedHeaders="+signedHeaders+", Signature="+signature)
}

// sigv4Key derives the signing key of one day, region and service from the
// secret access key.
func sigv4Key(secret, day, region, service string) []byte {
	key := hmacSHA256([]byte("AWS4"+secret), day)
	key = hmacSHA256(key, region)
	key = hmacSHA256(key, service)
	return hmacSHA256(key, "aws4_request")
}

// canonicalRequest returns the canonical form of req with the given
// payload hash, and the list of the headers it signs (lower case, sorted,
// joined by ";").
func canonicalRequest(req *http.Request, payloadHash string) (canonical, signedHeaders string) {
	headers := map[string][]string{}
	for name, values := range req.Header {
		lower := strings.ToLower(name)
		if lower == "content-type" || strings.HasPrefix(lower, "x-amz-") {
			headers[lower] = append(headers[lower], values...)
		}
	}
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	headers["host"] = []string{host}

	names := make([]string, 0, len(headers))
	for name := range headers {
		names = append(names, name)
	}
	sort.Strings(names)
	var lines strings.Builder
	for _, name := range names {
		values := make([]string, len(headers[name]))
		for i, v := range headers[name] {
			values[i] = strings.Join(strings.Fields(v), " ")
		}
		lines.WriteString(name + ":" + strings.Join(values, ",") + "\n")
	}
	signedHeaders = strings.Join(names, ";")

	canonical = strings.Join([]string{
		req.Method,
		canonicalPath(req.URL),
		canonicalQuery(req.URL.RawQuery),
		lines.String(),
		signedHeaders,
		payloadHash,
	}, "\n")
	return canonical, signedHeaders
}

// canonicalPath encodes each segment of the path as sent once more, as AWS
// does for every service but S3.
func canonicalPath(u *url.URL) string {
	path := u.EscapedPath()
	if path == "" {
		return "/"
	}
	segments := strings.Split(path, "/")
	for i, seg := range segments {
		segments[i] = awsURIEncode(seg)
	}
	return strings.Join(segments, "/")
}

// canonicalQuery encodes every name and value of a raw query string,
// sorts the pairs by name and then value and joins them with "&".
func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type pair struct{ name, value string }
	var pairs []pair
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		name, value, _ := strings.Cut(part, "=")
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
		if v, err := url.QueryUnescape(value); err == nil {
			value = v
		}
		pairs = append(pairs, pair{awsURIEncode(name), awsURIEncode(value)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].name != pairs[j].name {
			return pairs[i].name < pairs[j].name
		}
		return pairs[i].value < pairs[j].value
	})
	encoded := make([]string, len(pairs))
	for i, p := range pairs {
		encoded[i] = p.name + "=" + p.value
	}
	return strings.Join(encoded, "&")
}

// awsURIEncode percent-encodes every byte of s but the unreserved
// characters A-Z, a-z, 0-9, '-', '.', '_' and '~', with upper-case hex
// digits, as SigV4 requires (a space is %20, never +).
func awsURIEncode(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_', c == '~':
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0x0f])
		}
	}
	return b.String()
}

// hmacSHA256 returns the HMAC-SHA256 of data under key.
func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// hexSHA256 returns the lower-case hex SHA-256 of data.
func hexSHA256(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}
