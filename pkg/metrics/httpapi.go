package metrics

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxAnswer bounds how much of an answer the plain HTTP providers read.
const maxAnswer = 16 << 20

// callAPI sends req with client and returns the body of a 2xx answer.
// Another status is an error that gives the status, the start of the body
// and, for 401, 403 and 429, what to check. backend names the provider in
// messages.
func callAPI(client *http.Client, req *http.Request, backend string) ([]byte, error) {
	where := fmt.Sprintf("%s at %s", backend, req.URL.Scheme+"://"+req.URL.Host)
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("%s: reading the answer: %w", where, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, nil
	}
	msg := fmt.Sprintf("%s: %s", where, resp.Status)
	if detail := strings.Join(strings.Fields(string(body)), " "); detail != "" {
		if len(detail) > 200 {
			detail = detail[:200] + "..."
		}
		msg += ": " + detail
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		msg += " (check the credentials in the MetricTemplate's Secret)"
	case http.StatusTooManyRequests:
		msg += " (the backend is rate limiting the queries)"
	}
	return nil, errors.New(msg)
}
