//go:build linux

package e2e_test

import (
	"os/exec"
	"syscall"
)

// dieWithTest makes cmd's process die with the test binary, also when the
// binary is killed or times out before its cleanups run, so that no
// server outlives its test.
func dieWithTest(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
