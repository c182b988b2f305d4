package cluster

import "syscall"

// sysProcAttr makes the kernel kill a component when the process that
// started it dies, so that a crashed test or demo leaves nothing running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
