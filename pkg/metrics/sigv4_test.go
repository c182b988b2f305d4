package metrics

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// The published examples below use AWS's example credentials. Their
// expected values are AWS's:
//
//   - get-vanilla, get-vanilla-query-order-key-case, post-vanilla and
//     post-sts-header-before are vectors of the AWS Signature Version 4 test
//     suite (docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html,
//     also vendored as aws-sig-v4-test-suite in AWS's aws-c-auth): service
//     "service", region us-east-1, 2015-08-30T12:36:00Z.
//   - iam-list-users is the worked example of the AWS General Reference's
//     signing pages (an IAM ListUsers GET), with its documented canonical
//     request hash, signing key and signature.
const (
	exampleAccessKeyID = "AKIDEXAMPLE"
	exampleSecret      = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
	exampleSTSToken    = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA=="
)

// exampleTime is the time of every published example.
var exampleTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func TestSigV4_ReproducesThePublishedExamples(t *testing.T) {
	for _, tc := range []struct {
		name, method, url string
		service, token    string
		headers           map[string]string
		want              string
	}{
		{"get-vanilla", http.MethodGet, "https://example.amazonaws.com/", "service", "", nil,
			"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, " +
				"Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{"get-vanilla-query-order-key-case", http.MethodGet, "https://example.amazonaws.com/?Param2=value2&Param1=value1", "service", "", nil,
			"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, " +
				"Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{"post-vanilla", http.MethodPost, "https://example.amazonaws.com/", "service", "", nil,
			"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, " +
				"Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{"post-sts-header-before", http.MethodPost, "https://example.amazonaws.com/", "service", exampleSTSToken, nil,
			"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, " +
				"Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead"},
		{"iam-list-users", http.MethodGet, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", "iam", "",
			map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
			"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, " +
				"Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			s := sigv4Signer{accessKeyID: exampleAccessKeyID, secretAccessKey: exampleSecret, sessionToken: tc.token, region: "us-east-1", service: tc.service}
			s.sign(req, nil, exampleTime)
			if got := req.Header.Get("Authorization"); got != tc.want {
				t.Errorf("Authorization\n got %s\nwant %s", got, tc.want)
			}
			if got := req.Header.Get("X-Amz-Date"); got != "20150830T123600Z" {
				t.Errorf("X-Amz-Date %q", got)
			}
			if got := req.Header.Get("X-Amz-Security-Token"); got != tc.token {
				t.Errorf("X-Amz-Security-Token %q, want %q", got, tc.token)
			}
		})
	}
}

func TestSigV4_MatchesEachDocumentedStepOfTheIAMExample(t *testing.T) {
	req, err := http.NewRequest(http.MethodGet, "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("X-Amz-Date", "20150830T123600Z")
	canonical, signed := canonicalRequest(req, hexSHA256(nil))
	want := "GET\n/\nAction=ListUsers&Version=2010-05-08\n" +
		"content-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n" +
		"content-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if canonical != want || signed != "content-type;host;x-amz-date" {
		t.Errorf("canonical request\n%s\nsigned %s; want\n%s", canonical, signed, want)
	}
	if got := hexSHA256([]byte(canonical)); got != "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59" {
		t.Errorf("hash of the canonical request %s", got)
	}
	if got := hex.EncodeToString(sigv4Key(exampleSecret, "20150830", "us-east-1", "iam")); got != "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9" {
		t.Errorf("signing key %s", got)
	}
}

// TestSigV4_SignsAJSONBodyAsTheAlgorithmSays recomputes, with this test's
// own code, every step of signing a CloudWatch-shaped POST with a body and
// a session token, from a canonical request written out by hand.
func TestSigV4_SignsAJSONBodyAsTheAlgorithmSays(t *testing.T) {
	body := []byte(`{"MetricDataQueries":[{"Id":"m1","Expression":"SUM(METRICS())"}]}`)
	req, err := http.NewRequest(http.MethodPost, "https://monitoring.eu-west-1.amazonaws.com/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801.GetMetricData")
	req.Header.Set("X-Amz-Meta", "  a   lot\tof  space ")
	req.Header.Set("User-Agent", "sluice") // not signed
	s := sigv4Signer{accessKeyID: "AKID", secretAccessKey: "secret/key", sessionToken: "session+token", region: "eu-west-1", service: "monitoring"}
	s.sign(req, body, time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)))

	bodyHash := sha256.Sum256(body)
	canonical := "POST\n/\n\n" +
		"content-type:application/x-amz-json-1.0\n" +
		"host:monitoring.eu-west-1.amazonaws.com\n" +
		"x-amz-date:20240102T020405Z\n" +
		"x-amz-meta:a lot of space\n" +
		"x-amz-security-token:session+token\n" +
		"x-amz-target:GraniteServiceVersion20100801.GetMetricData\n\n" +
		"content-type;host;x-amz-date;x-amz-meta;x-amz-security-token;x-amz-target\n" +
		hex.EncodeToString(bodyHash[:])
	canonicalHash := sha256.Sum256([]byte(canonical))
	stringToSign := "AWS4-HMAC-SHA256\n20240102T020405Z\n20240102/eu-west-1/monitoring/aws4_request\n" + hex.EncodeToString(canonicalHash[:])
	mac := func(key []byte, data string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(data))
		return m.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4secret/key"), "20240102"), "eu-west-1"), "monitoring"), "aws4_request")
	want := "AWS4-HMAC-SHA256 Credential=AKID/20240102/eu-west-1/monitoring/aws4_request, " +
		"SignedHeaders=content-type;host;x-amz-date;x-amz-meta;x-amz-security-token;x-amz-target, " +
		"Signature=" + hex.EncodeToString(mac(key, stringToSign))
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization\n got %s\nwant %s", got, want)
	}
	if got := req.Header.Get("X-Amz-Security-Token"); got != "session+token" {
		t.Errorf("X-Amz-Security-Token %q", got)
	}

	// The body is part of the signature.
	again := req.Clone(req.Context())
	s.sign(again, []byte(`{}`), time.Date(2024, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600)))
	if again.Header.Get("Authorization") == want {
		t.Error("another body gave the same signature")
	}
}

func TestSigV4_CanonicalisesPathAndQuery(t *testing.T) {
	for _, tc := range []struct{ url, path, query string }{
		{"https://h/", "/", ""},
		{"https://h", "/", ""},
		{"https://h/a%20b/c~d", "/a%2520b/c~d", ""},
		{"https://h/?b=2&a=1&a=0", "/", "a=0&a=1&b=2"},
		{"https://h/?q=x+y&r=a%2Fb&s=~-._&t=%C3%A9", "/", "q=x%20y&r=a%2Fb&s=~-._&t=%C3%A9"},
		{"https://h/?flag&empty=", "/", "empty=&flag="},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := canonicalPath(u); got != tc.path {
			t.Errorf("%s: path %q, want %q", tc.url, got, tc.path)
		}
		if got := canonicalQuery(u.RawQuery); got != tc.query {
			t.Errorf("%s: query %q, want %q", tc.url, got, tc.query)
		}
	}
	if got := awsURIEncode("a b/+*"); got != "a%20b%2F%2B%2A" {
		t.Errorf("awsURIEncode: %q", got)
	}
}
