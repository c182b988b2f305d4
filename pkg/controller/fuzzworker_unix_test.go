//go:build unix

package controller

import (
	"os"
	"strings"
	"syscall"
)

// In `go test -fuzz`, each worker process talks to the coordinator
// through two pipes it inherits as file descriptors 3 and 4, without
// close-on-exec. The kube-apiserver and etcd that TestMain starts would
// inherit them too and keep them open after the worker exits, and the
// coordinator, which waits for the pipes to close, would wait forever.
func init() {
	for _, arg := range os.Args[1:] {
		if strings.HasPrefix(arg, "-test.fuzzworker") {
			syscall.CloseOnExec(3)
			syscall.CloseOnExec(4)
			return
		}
	}
}
