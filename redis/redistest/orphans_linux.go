//go:build linux

package redistest

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd's process die with the test binary, also when the
// binary is killed or times out before its cleanups run.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
