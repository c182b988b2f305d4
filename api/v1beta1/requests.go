package v1beta1

// The annotations through which a person asks Sluice to act on a Canary
// (kubectl sluice promote, abort, retry; see docs/cli.md). They are set
// together in one write; Sluice honours each request id once, records the
// outcome in status.lastRequest, and then removes them.
const (
	// RequestAnnotation holds promote, promote-full, abort or retry.
	RequestAnnotation = "sluice.dev/request"
	// RequestIDAnnotation holds a unique id of the request.
	RequestIDAnnotation = "sluice.dev/request-id"
	// RequestReasonAnnotation holds why the request was made.
	RequestReasonAnnotation = "sluice.dev/request-reason"
	// RequestByAnnotation holds who made the request.
	RequestByAnnotation = "sluice.dev/request-by"
)
