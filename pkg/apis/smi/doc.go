// Package smi holds minimal Go types for the Service Mesh Interface's
// TrafficSplit (API group split.smi-spec.io), in the versions that the
// linkerd, smi and osm routers write. They carry only the fields Sluice
// writes and reads; SMI publishes no Go module that Sluice can depend on.
//
// The packages under pkg are not a stable Go API.
package smi
