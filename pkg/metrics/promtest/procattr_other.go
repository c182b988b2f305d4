//go:build !linux

package promtest

import "os/exec"

// dieWithParent does nothing where the kernel cannot kill a child with its
// parent; Stop still stops the server.
func dieWithParent(*exec.Cmd) {}
