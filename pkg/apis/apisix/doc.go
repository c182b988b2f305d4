// Package apisix holds minimal Go types for the APISIX Ingress
// controller's ApisixRoute (API group apisix.apache.org), as the apisix
// router copies and writes it. The fields Sluice changes are typed; the
// others are kept as JSON so that a copy of a user's route keeps them. The
// Go module that ships APISIX's types pulls in the whole ingress
// controller, so Sluice does not depend on it.
//
// The packages under pkg are not a stable Go API.
package apisix
